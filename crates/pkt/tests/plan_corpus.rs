//! Plans every packetdrill script under `../shared/packetdrill/tcp/` (turns
//! it into the runner's step list) and prints which steps the runner would
//! report as unsupported, by reason. Skips, saying why, without the corpus
//! (a failure under `NETPATH_REQUIRE_SHARED=1`).

mod common;

use netpath_pkt::parse;
use netpath_pkt::run::plan::{plan, Action};
use std::collections::BTreeMap;

#[test]
fn every_script_plans() {
    let Some(dir) = common::tcp_dir("every_script_plans") else {
        return;
    };
    let files = common::pkt_files(&dir);
    assert!(!files.is_empty(), "no .pkt files under {}", dir.display());
    let mut failures = Vec::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut runnable = 0;
    for path in &files {
        let name = path
            .strip_prefix(&dir)
            .unwrap_or(path)
            .display()
            .to_string();
        let text = std::fs::read_to_string(path).expect("read script");
        let script = parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        match plan(&script) {
            Ok(p) => {
                assert_eq!(p.steps.len(), script.events.len(), "{name}");
                let mut first = p.settings.unsupported.first().cloned();
                for s in &p.steps {
                    if let Action::Unsupported(r) = &s.action {
                        first.get_or_insert_with(|| r.clone());
                    }
                }
                match first {
                    // Group by the reason's first words.
                    Some(r) => {
                        let key: String =
                            r.split_whitespace().take(4).collect::<Vec<_>>().join(" ");
                        *reasons.entry(key).or_default() += 1;
                    }
                    None => runnable += 1,
                }
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    eprintln!(
        "{} scripts planned: {runnable} with no unsupported step",
        files.len()
    );
    for (r, n) in &reasons {
        eprintln!("  {n:3} first unsupported: {r}");
    }
    assert!(failures.is_empty(), "plan errors:\n{}", failures.join("\n"));
}
