//! IPv4 fragmentation (`ip_do_fragment` in `net/ipv4/ip_output.c`): the
//! "fragment if needed (packet larger than the link's MTU)" bullet of seed
//! egress step 5. (Being written.)

use crate::drop::DropReason;
use crate::skb::Skb;
use crate::stack::Stack;

impl Stack {
    /// `ip_do_fragment()`: splits `skb` (data at its IPv4 header, header
    /// complete, DF clear) into fragments of at most `mtu` bytes each,
    /// appended to `out` in order.
    pub(crate) fn ip_do_fragment(&mut self, skb: Skb, mtu: u32, out: &mut Vec<Skb>) -> Result<(), DropReason> {
        let _ = (mtu, out);
        self.kfree_skb(skb, DropReason::PktTooBig);
        Err(DropReason::PktTooBig)
    }
}
