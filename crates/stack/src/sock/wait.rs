//! Socket wakeups (`include/net/sock.h`: `sk_data_ready`, `sk_write_space`,
//! `sk_state_change`, `sk_error_report`).
//!
//! Linux wakes a socket's wait queue with a *key*, the poll bits the event
//! concerns (`EPOLLIN|EPOLLRDNORM|...` for new data, `EPOLLOUT|...` for send
//! space, none for a state change); epoll's callback queues an item only for
//! a wakeup whose key meets its interest. netpath has no wait queues: each
//! socket records, per key, the stamp of its latest wakeup, stamps drawn from
//! one counter of the stack, so that a watcher (see [`crate::epoll`]) can ask
//! "was this socket woken for what I watch since stamp `s`?" at any time.

/// What a wakeup was for (its key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeKey {
    /// `sk_data_ready` (`sock_def_readable`): `EPOLLIN | EPOLLPRI |
    /// EPOLLRDNORM | EPOLLRDBAND`.
    DataReady,
    /// `sk_write_space` (`sk_stream_write_space`): `EPOLLOUT | EPOLLWRNORM
    /// | EPOLLWRBAND`.
    WriteSpace,
    /// `sk_state_change` (`sock_def_wakeup`): no key, every watcher.
    StateChange,
    /// `sk_error_report`: `EPOLLERR`, which every watcher has.
    ErrorReport,
}

/// `EPOLLIN` and the other read bits a data wakeup carries.
pub const KEY_READ: u32 = 0x001 | 0x002 | 0x040 | 0x080;
/// `EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND`.
pub const KEY_WRITE: u32 = 0x004 | 0x100 | 0x200;

/// The latest wakeup stamps of one socket (0: never woken).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wakeups {
    /// Latest `sk_data_ready`.
    pub data_ready: u64,
    /// Latest `sk_write_space` that woke anyone.
    pub write_space: u64,
    /// Latest wakeup without a key, or with `EPOLLERR`.
    pub any: u64,
}

impl Wakeups {
    /// Records a wakeup with `stamp` (larger than every earlier one).
    pub(crate) fn record(&mut self, key: WakeKey, stamp: u64) {
        match key {
            WakeKey::DataReady => self.data_ready = stamp,
            WakeKey::WriteSpace => self.write_space = stamp,
            WakeKey::StateChange | WakeKey::ErrorReport => self.any = stamp,
        }
    }

    /// The latest wakeup after `since` whose key meets `interest` (epoll
    /// event bits), if any.
    pub fn woken_since(&self, since: u64, interest: u32) -> Option<u64> {
        let mut latest = None;
        let mut see = |stamp: u64| {
            if stamp > since {
                latest = Some(latest.map_or(stamp, |l: u64| l.max(stamp)));
            }
        };
        if interest & KEY_READ != 0 {
            see(self.data_ready);
        }
        if interest & KEY_WRITE != 0 {
            see(self.write_space);
        }
        see(self.any);
        latest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_meet_interest() {
        let mut w = Wakeups::default();
        assert_eq!(w.woken_since(0, KEY_READ | KEY_WRITE), None);
        w.record(WakeKey::DataReady, 3);
        assert_eq!(w.woken_since(0, 0x004), None, "EPOLLOUT ignores data");
        assert_eq!(w.woken_since(0, 0x001), Some(3));
        assert_eq!(w.woken_since(3, 0x001), None, "already seen");
        w.record(WakeKey::WriteSpace, 5);
        assert_eq!(w.woken_since(3, 0x005), Some(5));
        w.record(WakeKey::StateChange, 7);
        assert_eq!(w.woken_since(5, 0), Some(7), "no key: every watcher");
    }
}
