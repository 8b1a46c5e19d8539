//! Reporting: one line per script, a summary per folder, JSON (written by
//! hand), and the exit status rule (0: every script that ran passed; 1:
//! some failed; 2: some could not be run or parsed). Unsupported scripts do
//! not change the exit status: they are features not implemented yet.

use super::Outcome;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The result of one script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptResult {
    /// The script's path relative to the corpus (`blocking/blocking-read.pkt`).
    pub name: String,
    /// What happened.
    pub outcome: Outcome,
}

impl ScriptResult {
    /// `pass`, `fail`, `unsupported` or `error`.
    pub fn status(&self) -> &'static str {
        match self.outcome {
            Outcome::Pass => "pass",
            Outcome::Fail { .. } => "fail",
            Outcome::Unsupported { .. } => "unsupported",
            Outcome::Error { .. } => "error",
        }
    }

    /// The folder part of the name (`blocking`; `.` for none).
    pub fn folder(&self) -> &str {
        match self.name.rfind('/') {
            Some(i) => &self.name[..i],
            None => ".",
        }
    }

    /// `PASS blocking/blocking-read.pkt` or `FAIL x.pkt: fail at line 9: ...`.
    pub fn line(&self) -> String {
        let tag = self.status().to_uppercase();
        match self.outcome {
            Outcome::Pass => format!("{tag:<11} {}", self.name),
            ref o => format!("{tag:<11} {}: {o}", self.name),
        }
    }
}

/// Counts for a folder (or everything).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Scripts.
    pub scripts: usize,
    /// Passed.
    pub pass: usize,
    /// Failed.
    pub fail: usize,
    /// Unsupported.
    pub unsupported: usize,
    /// Could not be run or parsed.
    pub error: usize,
}

impl Summary {
    /// Adds one result.
    pub fn add(&mut self, r: &ScriptResult) {
        self.scripts += 1;
        match r.outcome {
            Outcome::Pass => self.pass += 1,
            Outcome::Fail { .. } => self.fail += 1,
            Outcome::Unsupported { .. } => self.unsupported += 1,
            Outcome::Error { .. } => self.error += 1,
        }
    }

    /// The summary of every result.
    pub fn of(results: &[ScriptResult]) -> Summary {
        let mut s = Summary::default();
        results.iter().for_each(|r| s.add(r));
        s
    }

    /// One summary per folder, sorted by folder.
    pub fn by_folder(results: &[ScriptResult]) -> BTreeMap<String, Summary> {
        let mut m: BTreeMap<String, Summary> = BTreeMap::new();
        for r in results {
            m.entry(r.folder().to_string()).or_default().add(r);
        }
        m
    }

    /// `tcp/blocking: 4 scripts, 3 pass, 1 fail, 0 unsupported, 0 error`.
    pub fn line(&self, folder: &str) -> String {
        format!(
            "{folder}: {} scripts, {} pass, {} fail, {} unsupported, {} error",
            self.scripts, self.pass, self.fail, self.unsupported, self.error
        )
    }

    fn json(&self) -> String {
        format!(
            "{{\"scripts\":{},\"pass\":{},\"fail\":{},\"unsupported\":{},\"error\":{}}}",
            self.scripts, self.pass, self.fail, self.unsupported, self.error
        )
    }
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// One result as a JSON object.
pub fn result_json(r: &ScriptResult) -> String {
    let mut o = format!(
        "{{\"script\":{},\"status\":\"{}\"",
        json_str(&r.name),
        r.status()
    );
    match &r.outcome {
        Outcome::Pass => {}
        Outcome::Fail {
            line,
            expected,
            actual,
        } => {
            let _ = write!(
                o,
                ",\"line\":{line},\"expected\":{},\"actual\":{}",
                json_str(expected),
                json_str(actual)
            );
        }
        Outcome::Unsupported { line, reason } | Outcome::Error { line, reason } => {
            let _ = write!(o, ",\"line\":{line},\"reason\":{}", json_str(reason));
        }
    }
    o.push('}');
    o
}

/// Every result, the per-folder summaries and the total, as one JSON
/// document.
pub fn to_json(results: &[ScriptResult]) -> String {
    let mut o = String::from("{\"results\":[");
    for (i, r) in results.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        o.push_str(&result_json(r));
    }
    o.push_str("],\"folders\":{");
    for (i, (f, s)) in Summary::by_folder(results).iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        let _ = write!(o, "{}:{}", json_str(f), s.json());
    }
    let _ = write!(
        o,
        "}},\"total\":{},\"exit_status\":{}}}",
        Summary::of(results).json(),
        exit_status(results)
    );
    o
}

/// 2 if some script could not be run or parsed, else 1 if some failed,
/// else 0.
pub fn exit_status(results: &[ScriptResult]) -> i32 {
    let s = Summary::of(results);
    if s.error > 0 {
        2
    } else if s.fail > 0 {
        1
    } else {
        0
    }
}
