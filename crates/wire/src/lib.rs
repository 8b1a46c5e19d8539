//! netpath-wire: the packet formats of the Linux path, as zero-copy views.
//!
//! Every format has a view type over any `T: AsRef<[u8]>` (read) or
//! `T: AsRef<[u8]> + AsMut<[u8]>` (write in place), built with `new_checked`,
//! which validates lengths so that the accessors never panic, and (where it
//! helps) a `Repr`: a plain struct of the header's fields that `parse`s from a
//! view and `emit`s into a buffer. No I/O, no allocation: the stack pushes a
//! header into an skb's headroom and emits straight into those bytes.
//!
//! Seed stages served: the FCS check of ingress step 3 (`ethernet::fcs`), the
//! Ethernet/VLAN header handling of steps 7–8, `ip_rcv`'s header checks (step
//! 9), `tcp_v4_rcv`'s header and checksum (step 11), and every header that
//! egress steps 3–7 push.

pub mod checksum;
pub mod error;

pub use error::{ErrorKind, Layer, Result, WireError};
pub mod arp;
pub mod ethernet;
pub mod icmpv4;
pub mod ipv4;
pub mod pcap;
pub mod tcp;
pub mod udp;

/// The big-endian `u16` in the first two bytes of `b` (which the caller's
/// length check guarantees).
pub(crate) fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}
