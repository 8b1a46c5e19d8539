//! Shared helpers for tests that read `../shared/packetdrill/` (GPL test
//! data that lives beside the checkout, never in it). Without it a test skips
//! and prints why; with `NETPATH_REQUIRE_SHARED=1` the skip is a failure.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `$NETPATH_SHARED`, else `<workspace>/../shared`.
pub fn shared_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("NETPATH_SHARED") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// The packetdrill `tcp/` folder, or `None` after printing why the calling
/// test skips. Panics instead when `NETPATH_REQUIRE_SHARED=1`.
pub fn tcp_dir(test: &str) -> Option<PathBuf> {
    let dir = shared_dir().join("packetdrill");
    if dir.join("tcp").is_dir() {
        return Some(dir.join("tcp"));
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

/// Every `*.pkt` under `dir`, recursively, sorted.
pub fn pkt_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "pkt") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
