//! Parses every packetdrill script under `../shared/packetdrill/tcp/`,
//! checks the print → parse round trip, and prints a summary.

mod common;

use netpath_pkt::{parse, EventKind, PacketBody, PyStmt};
use std::collections::BTreeMap;

/// Scripts with constructs the parser does not support (path suffix, reason).
/// Empty: every script in the corpus parses.
const KNOWN_UNSUPPORTED: &[(&str, &str)] = &[];

#[test]
fn corpus_parses_and_round_trips() {
    let Some(dir) = common::tcp_dir("corpus_parses_and_round_trips") else {
        return;
    };
    let files = common::pkt_files(&dir);
    assert!(!files.is_empty(), "no .pkt files under {}", dir.display());
    let mut failures = Vec::new();
    let mut unsupported = 0;
    let mut parsed = 0;
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    let mut options = 0;
    for path in &files {
        let name = path
            .strip_prefix(&dir)
            .unwrap_or(path)
            .display()
            .to_string();
        let text = std::fs::read_to_string(path).expect("read script");
        let known = KNOWN_UNSUPPORTED.iter().any(|(p, _)| name.ends_with(p));
        let script = match parse(&text) {
            Ok(s) => s,
            Err(e) if known => {
                eprintln!("known unsupported: {name}: {e}");
                unsupported += 1;
                continue;
            }
            Err(e) => {
                failures.push(format!("{name}:{e}"));
                continue;
            }
        };
        assert!(!known, "{name} is listed as unsupported but parses");
        parsed += 1;
        options += script.options.len();
        for ev in &script.events {
            let k = match &ev.kind {
                EventKind::Syscall(_) => "syscall",
                EventKind::Packet(p) => match (&p.body, p.direction) {
                    (PacketBody::Tcp(_), netpath_pkt::Direction::Inbound) => "packet <",
                    (PacketBody::Tcp(_), netpath_pkt::Direction::Outbound) => "packet >",
                    (PacketBody::Icmp(_), _) => "icmp",
                },
                EventKind::Shell(_) => "shell",
                EventKind::Python(b) => {
                    for s in &b.stmts {
                        *kinds
                            .entry(match s {
                                PyStmt::Assert { .. } => "  python assert",
                                PyStmt::Assign { .. } => "  python assign",
                                PyStmt::Expr(_) => "  python expr",
                                PyStmt::Other(_) => "  python other",
                            })
                            .or_default() += 1;
                    }
                    "python"
                }
            };
            *kinds.entry(k).or_default() += 1;
        }
        let printed = script.to_string();
        match parse(&printed) {
            Ok(again) if again.eq_ignoring_lines(&script) => {}
            Ok(_) => failures.push(format!("{name}: round trip changed the AST")),
            Err(e) => failures.push(format!("{name}: reparse failed: {e}")),
        }
    }
    eprintln!(
        "corpus: {parsed}/{} scripts parsed ({unsupported} known unsupported), {options} options",
        files.len()
    );
    for (k, n) in &kinds {
        eprintln!("  {k}: {n}");
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(unsupported, KNOWN_UNSUPPORTED.len());
}

#[test]
#[ignore]
fn dump_python_statements() {
    let Some(dir) = common::tcp_dir("dump_python_statements") else {
        return;
    };
    for path in common::pkt_files(&dir) {
        let Ok(s) = parse(&std::fs::read_to_string(&path).unwrap_or_default()) else {
            continue;
        };
        for e in &s.events {
            if let EventKind::Python(b) = &e.kind {
                for st in &b.stmts {
                    eprintln!("{st}");
                }
            }
        }
    }
}
