//! The conformance ratchet: runs every Linux packetdrill script under
//! `../shared/packetdrill/tcp/` against netpath (each on a fresh stack, with
//! a wall-clock bound) and fails when a script that
//! `conformance/expected.toml` marks `pass` no longer passes. Scripts that
//! pass but are not marked so are printed, to be added (the file only
//! ratchets upward: refresh it with
//! `netpath pkt --expected ../shared/packetdrill/tcp > conformance/expected.toml`).
//! Skips, saying why, without the corpus (a failure under
//! `NETPATH_REQUIRE_SHARED=1`).

mod common;

use netpath_pkt::suite::{self, Counts, Status};
use std::path::PathBuf;
use std::time::Duration;

/// Per-script wall-clock bound (debug builds).
const LIMIT: Duration = Duration::from_secs(10);

#[test]
fn conformance_never_regresses() {
    let Some(dir) = common::tcp_dir("conformance_never_regresses") else {
        return;
    };
    let expected_path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance/expected.toml");
    let text = std::fs::read_to_string(&expected_path)
        .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
    let expected = suite::parse_expected(&text).expect("conformance/expected.toml parses");
    let files = suite::collect(std::slice::from_ref(&dir)).expect("list the corpus");
    assert!(!files.is_empty(), "no .pkt files under {}", dir.display());
    let started = std::time::Instant::now();
    let mut results = Vec::new();
    let mut regressions = Vec::new();
    let mut improved = Vec::new();
    let mut unlisted = Vec::new();
    for f in &files {
        let r = suite::run_file(f, LIMIT);
        let now = Status::of(&r);
        match expected.get(&r.name) {
            Some(Status::Pass) if now != Status::Pass => {
                regressions.push(suite::result_line(&r));
            }
            Some(s) if now == Status::Pass && *s != Status::Pass => {
                improved.push(format!("\"{}\" = \"pass\"  (was {})", r.name, s.as_str()));
            }
            Some(_) => {}
            None => unlisted.push(format!("\"{}\" = \"{}\"", r.name, now.as_str())),
        }
        results.push(r);
    }
    for (folder, c) in Counts::by_folder(&results) {
        eprintln!("{}", c.line(&folder));
    }
    eprintln!(
        "{} ({:.1} s)",
        Counts::of(&results).line("total"),
        started.elapsed().as_secs_f64()
    );
    if !improved.is_empty() {
        eprintln!("newly passing (add to conformance/expected.toml):");
        for l in &improved {
            eprintln!("  {l}");
        }
    }
    if !unlisted.is_empty() {
        eprintln!("not in conformance/expected.toml:");
        for l in &unlisted {
            eprintln!("  {l}");
        }
    }
    assert!(
        regressions.is_empty(),
        "scripts marked pass in conformance/expected.toml no longer pass:\n{}",
        regressions.join("\n")
    );
}

#[test]
fn expected_file_lists_known_statuses() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance/expected.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let m = suite::parse_expected(&text).expect("parses");
    assert!(!m.is_empty());
}
