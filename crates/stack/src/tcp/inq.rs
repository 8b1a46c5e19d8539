//! `TCP_INQ` (`tcp_inq_hint`): with the option on, each `recvmsg` that
//! returns (data or end of stream) carries a `TCP_CM_INQ` control message:
//! the bytes still to read, counted as `rcv_nxt - copied_seq` (so a FIN
//! received counts one), and at least 1 once the peer has closed, so that
//! the reader goes on to read the end of the stream.

use crate::sock::{Errno, SockId};
use crate::stack::Stack;

impl Stack {
    /// `tcp_inq_hint()`: bytes received in order and not yet read (a FIN
    /// counts one; 1 at least after the FIN).
    pub fn tcp_inq_hint(&self, id: SockId) -> Result<u32, Errno> {
        let sk = self.tcp_user(id)?;
        let inq = sk.rcv_nxt.0.wrapping_sub(sk.copied_seq.0);
        let inq = if (inq as i32) < 0 { 0 } else { inq };
        Ok(if inq == 0 && sk.fin_received { 1 } else { inq })
    }

    /// The `TCP_CM_INQ` value a `recvmsg` that just returned attaches:
    /// `Some(hint)` when `TCP_INQ` is on, else `None`.
    pub fn tcp_cm_inq(&self, id: SockId) -> Result<Option<u32>, Errno> {
        let on = self.tcp_user(id)?.recvmsg_inq;
        if !on {
            return Ok(None);
        }
        self.tcp_inq_hint(id).map(Some)
    }
}
