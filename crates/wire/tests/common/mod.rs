//! Shared helpers for tests that read `../shared/` (real Linux captures).
//!
//! The data lives beside the checkout, never in it. Without it a test skips
//! and prints why; with `NETPATH_REQUIRE_SHARED=1` (set by `.ci/run`) the skip
//! is a failure.
#![allow(dead_code)]

use std::path::PathBuf;

/// `$NETPATH_SHARED`, else `<workspace>/../shared`.
pub fn shared_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("NETPATH_SHARED") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// The captures folder, or `None` after printing why the calling test skips.
/// Panics instead when `NETPATH_REQUIRE_SHARED=1`.
pub fn captures_dir(test: &str) -> Option<PathBuf> {
    let dir = shared_dir().join("captures");
    if dir.join("README.md").is_file() {
        return Some(dir);
    }
    let why = format!(
        "{test}: skipped: {} not found (set NETPATH_SHARED)",
        dir.display()
    );
    if std::env::var("NETPATH_REQUIRE_SHARED").as_deref() == Ok("1") {
        panic!("{why}, and NETPATH_REQUIRE_SHARED=1");
    }
    eprintln!("{why}");
    None
}

/// Every `*.pcap` in the captures folder, sorted by name.
pub fn capture_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read captures dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    v.sort();
    v
}
