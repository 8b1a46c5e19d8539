//! `SO_ZEROCOPY` / `MSG_ZEROCOPY` (`msg_zerocopy_realloc`,
//! `__msg_zerocopy_callback`): each `MSG_ZEROCOPY` send on a socket with
//! `SO_ZEROCOPY` takes the next notification id (`sk_zckey`); once all its
//! data is acknowledged and freed, a notification for that id joins the
//! socket's error queue, merged with the previous one when the ids are
//! consecutive, and the socket reports `POLLERR` until the queue is read
//! (the queue is the socket's one error queue, [`super::errqueue`]).
//! netpath copies the user's bytes in every case, so each notification
//! carries `SO_EE_CODE_ZEROCOPY_COPIED`, as Linux's does when it had to
//! copy. A send without `SO_ZEROCOPY`, or of zero bytes, takes no id.

use std::collections::VecDeque;

use super::sock::TcpSock;
use crate::sock::wait::WakeKey;
use crate::stack::Stack;
use netpath_wire::tcp::TcpSeqNumber;

/// One completion notification (`struct sock_extended_err` with
/// `SO_EE_ORIGIN_ZEROCOPY`): the ids `lo..=hi` completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZcNotification {
    /// `ee_info`: the first id.
    pub lo: u32,
    /// `ee_data`: the last id.
    pub hi: u32,
    /// `ee_code == SO_EE_CODE_ZEROCOPY_COPIED`: the data was copied.
    pub copied: bool,
}

/// Per-socket zerocopy state.
#[derive(Debug, Clone, Default)]
pub(crate) struct ZcState {
    /// `sk_zckey`: the next id.
    next_id: u32,
    /// Sends not yet completed: (id, end of their data).
    pending: VecDeque<(u32, TcpSeqNumber)>,
}

impl Stack {
    /// After a `MSG_ZEROCOPY` send queued data: the send takes an id,
    /// completed when everything up to the current `write_seq` is freed.
    pub(crate) fn tcp_zerocopy_sent(sk: &mut TcpSock) {
        let id = sk.zc.next_id;
        sk.zc.next_id = id.wrapping_add(1);
        let end = sk.write_seq;
        sk.zc.pending.push_back((id, end));
    }

    /// After `snd_una` advanced (or the queues were purged, `all`): the
    /// sends whose data is all freed complete; the error queue wakes the
    /// socket (`sk_error_report`).
    pub(crate) fn tcp_zerocopy_complete(&mut self, sk: &mut TcpSock, all: bool) {
        let mut done = false;
        while let Some(&(id, end)) = sk.zc.pending.front() {
            if !all && end.after(sk.snd_una) {
                break;
            }
            sk.zc.pending.pop_front();
            sk.errq.push_zerocopy(id);
            done = true;
        }
        if done {
            self.sk_wake(sk, WakeKey::ErrorReport);
        }
    }
}
