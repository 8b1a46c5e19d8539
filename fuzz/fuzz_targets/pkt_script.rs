//! A packetdrill script, as text, into the parser and the planner
//! (`netpath pkt`): any input is a script or a typed error naming its line,
//! never a panic. Scripts that parse and plan are also run against a
//! netpath host when they are short in virtual time (the runner must not
//! panic on any script the planner accepts).
//!
//! Seed it with the Linux scripts, read in place (never copied into the
//! project): `cargo fuzz run -s none pkt_script /tmp/pkt-corpus
//! ../../shared/packetdrill/tcp/*/`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netpath_pkt::netpath_host::NetpathHost;
use netpath_pkt::run::{run_script, RunOptions};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(script) = netpath_pkt::parse(text) else {
        return;
    };
    // The printer must round-trip what the parser accepted.
    let printed = script.to_string();
    let again = netpath_pkt::parse(&printed);
    assert!(again.is_ok(), "printed script does not parse: {printed}");
    if netpath_pkt::run::plan::plan(&script).is_err() {
        return;
    }
    // Bounded runs only: a few lines, and no huge buffers.
    if text.len() > 16384 || text.contains("000000") {
        return;
    }
    let opts = RunOptions {
        any_time_limit_usecs: 1_000_000,
        ..RunOptions::default()
    };
    if let Ok(mut host) = NetpathHost::for_options(&opts) {
        host.set_wall_limit(std::time::Duration::from_millis(200));
        let _ = run_script(&script, &mut host, &opts);
    }
});
