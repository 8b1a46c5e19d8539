//! Raw IPv4 sockets (`net/ipv4/raw.c`): `raw_local_deliver` gives every raw
//! socket of a protocol a clone of each packet of that protocol delivered
//! to this host (seed ingress step 10, before the L4 handler); a protocol
//! with a raw socket and no handler is consumed, not answered with "protocol
//! unreachable". Sending is [`Stack::ip_send`].

use std::collections::VecDeque;

use crate::drop::DropReason;
use crate::skb::Skb;
use crate::stack::Stack;

/// Handle of a raw socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawId(usize);

/// A raw socket bound to one IP protocol.
#[derive(Debug)]
pub struct RawSocket {
    pub protocol: u8,
    queue: VecDeque<Skb>,
    limit: usize,
    pub drops: u64,
}

impl Stack {
    /// `socket(AF_INET, SOCK_RAW, protocol)`, receiving at most `limit`
    /// packets before dropping (`SOCKET_RCVBUFF`).
    pub fn raw_open(&mut self, protocol: u8, limit: usize) -> RawId {
        self.ip.raw.push(Some(RawSocket {
            protocol,
            queue: VecDeque::new(),
            limit,
            drops: 0,
        }));
        RawId(self.ip.raw.len() - 1)
    }

    pub fn raw_close(&mut self, id: RawId) {
        if let Some(s) = self.ip.raw.get_mut(id.0) {
            *s = None;
        }
    }

    /// The next packet: data at the transport header, its IPv4 header at
    /// `network_header_bytes()`.
    pub fn raw_recv(&mut self, id: RawId) -> Option<Skb> {
        self.ip.raw.get_mut(id.0)?.as_mut()?.queue.pop_front()
    }

    pub fn raw_socket(&self, id: RawId) -> Option<&RawSocket> {
        self.ip.raw.get(id.0)?.as_ref()
    }

    /// `raw_local_deliver()`: a clone to each raw socket of `proto`.
    /// Returns whether any took one.
    pub(crate) fn raw_local_deliver(&mut self, skb: &Skb, proto: u8) -> bool {
        let mut any = false;
        for i in 0..self.ip.raw.len() {
            let Some(Some(s)) = self.ip.raw.get_mut(i) else {
                continue;
            };
            if s.protocol != proto {
                continue;
            }
            any = true;
            if s.queue.len() >= s.limit {
                s.drops += 1;
                let c = skb.clone();
                self.kfree_skb(c, DropReason::SocketRcvbuff);
            } else {
                s.queue.push_back(skb.clone());
            }
        }
        any
    }
}
