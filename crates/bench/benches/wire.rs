//! Parse and emit cost per header: see benches/wire.rs (filled once the wire formats land).
fn main() {}
