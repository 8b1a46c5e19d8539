//! netpath-sys: netpath on real devices.
//!
//! Later issues put the TAP and AF_PACKET devices and the real-time runtime
//! here (DESIGN.md §3): epoll on device fds, the stack's next deadline as the
//! timeout. The core crate (`netpath`) stays free of clocks and I/O; this
//! crate is where the real clock lives.

/// Nanoseconds since an arbitrary epoch, read from the monotonic clock.
/// The one place the real clock is read; the core only ever gets `now` passed in.
pub fn monotonic_now() -> netpath::time::Instant {
    use std::sync::OnceLock;
    use std::time::Instant as StdInstant;
    static EPOCH: OnceLock<StdInstant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(StdInstant::now);
    netpath::time::Instant::from_nanos(epoch.elapsed().as_nanos() as u64)
}
