//! Running the Linux packetdrill corpus against netpath: finding scripts,
//! running each on a fresh [`NetpathHost`] with a wall-clock bound,
//! classifying results (features netpath does not implement are
//! "not implemented", not failures), the Markdown report
//! (`CONFORMANCE.md`) and the conformance ratchet file
//! (`conformance/expected.toml`).

use crate::netpath_host::NetpathHost;
use crate::run::{self, Outcome, RunOptions, ScriptResult};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Folders of the corpus whose feature netpath does not implement: their
/// scripts are reported "not implemented" without running.
pub const NOT_IMPLEMENTED: &[(&str, &str)] = &[];

/// The prefix of a not-implemented script's reason.
pub const NOT_IMPLEMENTED_PREFIX: &str = "feature not implemented";

/// Default wall-clock bound per script.
pub const DEFAULT_WALL_LIMIT: Duration = Duration::from_secs(5);

/// The run options for netpath: documentation addresses (the stack at
/// 192.0.2.2/24, the remote end at 192.0.2.1).
pub fn netpath_options() -> RunOptions {
    let local_ip = Ipv4Addr::new(192, 0, 2, 2);
    let remote_ip = Ipv4Addr::new(192, 0, 2, 1);
    RunOptions {
        local_ip,
        remote_ip,
        defines: vec![("TFO_COOKIE".to_string(), tfo_cookie(remote_ip, local_ip))],
        ..RunOptions::default()
    }
}

/// The run options for one script: [`netpath_options`], except that a
/// script naming its addresses (`--local_ip`, `--remote_ip`) runs with
/// them, as values derived from them (Fast Open cookies) must match the
/// ones Linux computed for the script.
pub fn options_for_script(text: &str) -> RunOptions {
    let mut opts = netpath_options();
    let settings = crate::parse(text)
        .ok()
        .and_then(|s| run::plan::plan(&s).ok())
        .map(|p| p.settings);
    if let Some(s) = settings {
        if let Some(l) = s.local_ip {
            opts.local_ip = l;
        }
        if let Some(r) = s.remote_ip {
            opts.remote_ip = r;
        }
    }
    opts.defines = vec![
        (
            "TFO_COOKIE".to_string(),
            tfo_cookie(opts.remote_ip, opts.local_ip),
        ),
        // The ICMP code of the fastopen/server icmp-* scripts, which
        // packetdrill's run_all.py leaves undefined: host_unreachable is
        // the one code they are consistent with (Linux reports it as
        // EHOSTUNREACH and drops a request sock on it).
        ("CODE".to_string(), "host_unreachable".to_string()),
    ];
    opts
}

/// packetdrill's `-D TFO_COOKIE=…`: the Fast Open cookie a Linux server
/// makes with `defaults.sh`'s key for a SYN from `remote` to `local`
/// (packetdrill gives the value for its own addresses; the runner's
/// differ, so it computes it).
pub fn tfo_cookie(remote: Ipv4Addr, local: Ipv4Addr) -> String {
    use netpath::tcp::fastopen::{cookie_v4, FastOpenKeys};
    let key = crate::run::shell::DEFAULT_SYSCTLS
        .iter()
        .find(|(n, _)| *n == "net.ipv4.tcp_fastopen_key")
        .and_then(|(_, v)| FastOpenKeys::parse(v).ok())
        .map_or([0; 16], |k| k.keys()[0]);
    cookie_v4(&key, remote, local)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A script's status in the conformance report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Passes.
    Pass,
    /// Fails (the stack does something else than Linux).
    Fail,
    /// Needs something the runner or netpath does not have.
    Unsupported,
    /// Its folder's feature is not implemented in netpath.
    NotImplemented,
    /// Could not be run or parsed.
    Error,
}

impl Status {
    /// `pass`, `fail`, `unsupported`, `not-implemented`, `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Unsupported => "unsupported",
            Status::NotImplemented => "not-implemented",
            Status::Error => "error",
        }
    }

    /// The inverse of [`Status::as_str`].
    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::Pass,
            Status::Fail,
            Status::Unsupported,
            Status::NotImplemented,
            Status::Error,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }

    /// The status of a result.
    pub fn of(r: &ScriptResult) -> Status {
        match &r.outcome {
            Outcome::Pass => Status::Pass,
            Outcome::Fail { .. } => Status::Fail,
            Outcome::Unsupported { reason, .. } if reason.starts_with(NOT_IMPLEMENTED_PREFIX) => {
                Status::NotImplemented
            }
            Outcome::Unsupported { .. } => Status::Unsupported,
            Outcome::Error { .. } => Status::Error,
        }
    }
}

/// A script to run: its file and its report name (`blocking/x.pkt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptFile {
    /// The file.
    pub path: PathBuf,
    /// The name relative to the folder given (for a single file: its
    /// parent folder's name and its own).
    pub name: String,
}

/// Every `*.pkt` under each argument (a file or a folder), sorted by name.
pub fn collect(args: &[PathBuf]) -> std::io::Result<Vec<ScriptFile>> {
    let mut out = Vec::new();
    for a in args {
        if a.is_dir() {
            let mut stack = vec![a.clone()];
            let mut found = Vec::new();
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d)? {
                    let p = e?.path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if p.extension().is_some_and(|x| x == "pkt") {
                        found.push(p);
                    }
                }
            }
            found.sort();
            // A folder of scripts (no subfolders) keeps its own name in the
            // script names (`blocking/x.pkt`), a corpus root does not.
            let has_subdirs = std::fs::read_dir(a)?.flatten().any(|e| e.path().is_dir());
            let base = match a.parent() {
                Some(p) if !has_subdirs && a.file_name().is_some() => p.to_path_buf(),
                _ => a.clone(),
            };
            for p in found {
                let name = p
                    .strip_prefix(&base)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push(ScriptFile { path: p, name });
            }
        } else if a.is_file() {
            let file = a.file_name().map(|f| f.to_string_lossy().to_string());
            let dir = a
                .parent()
                .and_then(Path::file_name)
                .map(|d| d.to_string_lossy().to_string());
            let name = match (dir, file) {
                (Some(d), Some(f)) => format!("{d}/{f}"),
                (None, Some(f)) => f,
                _ => a.display().to_string(),
            };
            out.push(ScriptFile {
                path: a.clone(),
                name,
            });
        } else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{}: no such file or folder", a.display()),
            ));
        }
    }
    Ok(out)
}

/// The not-implemented feature of a script's folder, if any.
pub fn not_implemented(name: &str) -> Option<&'static str> {
    let folder = name.split('/').next()?;
    NOT_IMPLEMENTED
        .iter()
        .find(|(f, _)| *f == folder && name.contains('/'))
        .map(|(_, what)| *what)
}

/// Runs one script's text on a fresh netpath host.
pub fn run_text(name: &str, text: &str, wall_limit: Duration) -> ScriptResult {
    if let Some(what) = not_implemented(name) {
        return ScriptResult {
            name: name.to_string(),
            outcome: Outcome::Unsupported {
                line: 0,
                reason: format!("{NOT_IMPLEMENTED_PREFIX}: {what}"),
            },
        };
    }
    // packetdrill's run_all.py runs `*v6.pkt` scripts over IPv6 only.
    if name.ends_with("v6.pkt") {
        return ScriptResult {
            name: name.to_string(),
            outcome: Outcome::Unsupported {
                line: 0,
                reason: "an IPv6-only script (netpath is IPv4)".to_string(),
            },
        };
    }
    let opts = options_for_script(text);
    let mut host = match NetpathHost::for_options(&opts) {
        Ok(h) => h,
        Err(e) => {
            return ScriptResult {
                name: name.to_string(),
                outcome: Outcome::Error {
                    line: 0,
                    reason: format!("setting up the netpath host: {e}"),
                },
            }
        }
    };
    host.set_wall_limit(wall_limit);
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let r = run::run_source(name, text, &mut host, &opts);
        (r, host.timed_out())
    }));
    match ran {
        Ok((_, true)) => ScriptResult {
            name: name.to_string(),
            outcome: Outcome::Fail {
                line: 0,
                expected: format!(
                    "the script to finish within {:.0} s of wall-clock time",
                    wall_limit.as_secs_f64()
                ),
                actual: "timed out".to_string(),
            },
        },
        Ok((r, false)) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic".to_string());
            ScriptResult {
                name: name.to_string(),
                outcome: Outcome::Fail {
                    line: 0,
                    expected: "no panic".to_string(),
                    actual: format!("netpath panicked: {msg}"),
                },
            }
        }
    }
}

/// Runs one script file.
pub fn run_file(f: &ScriptFile, wall_limit: Duration) -> ScriptResult {
    // A folder of a not-implemented feature anywhere in the path.
    let feature = f.path.components().find_map(|c| {
        let c = c.as_os_str().to_string_lossy();
        NOT_IMPLEMENTED
            .iter()
            .find(|(d, _)| *d == c)
            .map(|(_, what)| *what)
    });
    if let Some(what) = feature {
        return ScriptResult {
            name: f.name.clone(),
            outcome: Outcome::Unsupported {
                line: 0,
                reason: format!("{NOT_IMPLEMENTED_PREFIX}: {what}"),
            },
        };
    }
    match std::fs::read_to_string(&f.path) {
        Ok(text) => run_text(&f.name, &text, wall_limit),
        Err(e) => ScriptResult {
            name: f.name.clone(),
            outcome: Outcome::Error {
                line: 0,
                reason: format!("{}: {e}", f.path.display()),
            },
        },
    }
}

/// Counts per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Scripts.
    pub scripts: usize,
    /// Passed.
    pub pass: usize,
    /// Failed.
    pub fail: usize,
    /// Unsupported.
    pub unsupported: usize,
    /// Not implemented.
    pub not_implemented: usize,
    /// Errors.
    pub error: usize,
}

impl Counts {
    /// Adds one status.
    pub fn add(&mut self, s: Status) {
        self.scripts += 1;
        match s {
            Status::Pass => self.pass += 1,
            Status::Fail => self.fail += 1,
            Status::Unsupported => self.unsupported += 1,
            Status::NotImplemented => self.not_implemented += 1,
            Status::Error => self.error += 1,
        }
    }

    /// Counts per folder, sorted.
    pub fn by_folder(results: &[ScriptResult]) -> BTreeMap<String, Counts> {
        let mut m: BTreeMap<String, Counts> = BTreeMap::new();
        for r in results {
            m.entry(r.folder().to_string())
                .or_default()
                .add(Status::of(r));
        }
        m
    }

    /// Counts of everything.
    pub fn of(results: &[ScriptResult]) -> Counts {
        let mut c = Counts::default();
        results.iter().for_each(|r| c.add(Status::of(r)));
        c
    }

    /// `blocking: 4 scripts, 3 pass, 1 fail, 0 unsupported, 0 not implemented`.
    pub fn line(&self, folder: &str) -> String {
        let mut s = format!(
            "{folder}: {} scripts, {} pass, {} fail, {} unsupported, {} not implemented",
            self.scripts, self.pass, self.fail, self.unsupported, self.not_implemented
        );
        if self.error > 0 {
            let _ = write!(s, ", {} error", self.error);
        }
        s
    }
}

/// One line per result: `PASS name`, `FAIL name: ...`, `NOT-IMPL name: ...`.
pub fn result_line(r: &ScriptResult) -> String {
    match Status::of(r) {
        Status::NotImplemented => format!("{:<11} {}: {}", "NOT-IMPL", r.name, r.outcome),
        _ => r.line(),
    }
}

impl Counts {
    fn json(&self) -> String {
        format!(
            "{{\"scripts\":{},\"pass\":{},\"fail\":{},\"unsupported\":{},\"not_implemented\":{},\"error\":{}}}",
            self.scripts, self.pass, self.fail, self.unsupported, self.not_implemented, self.error
        )
    }
}

/// Every result (status `not-implemented` for the folders of
/// [`NOT_IMPLEMENTED`]), the per-folder counts and the total, as one JSON
/// document, with the exit status ([`crate::run::exit_status`]).
pub fn to_json(results: &[ScriptResult]) -> String {
    use crate::run::report::{json_str, result_json};
    let mut o = String::from("{\"results\":[");
    for (i, r) in results.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        let j = result_json(r);
        if Status::of(r) == Status::NotImplemented {
            o.push_str(&j.replacen(
                "\"status\":\"unsupported\"",
                "\"status\":\"not-implemented\"",
                1,
            ));
        } else {
            o.push_str(&j);
        }
    }
    o.push_str("],\"folders\":{");
    for (i, (f, c)) in Counts::by_folder(results).iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        let _ = write!(o, "{}:{}", json_str(f), c.json());
    }
    let _ = write!(
        o,
        "}},\"total\":{},\"exit_status\":{}}}",
        Counts::of(results).json(),
        run::exit_status(results)
    );
    o
}

fn md_escape(s: &str) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let t = one_line.replace('|', "\\|");
    if t.chars().count() > 240 {
        let cut: String = t.chars().take(240).collect();
        format!("{cut}…")
    } else {
        t
    }
}

/// Linux's own results (`../shared/packetdrill/linux-6.18.tsv`: script,
/// `pass`/`fail`, first error): script → (status, error).
pub fn parse_linux_tsv(text: &str) -> BTreeMap<String, (String, String)> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let mut it = l.splitn(3, '\t');
            let name = it.next()?.trim();
            let status = it.next()?.trim();
            let err = it.next().unwrap_or("").trim();
            (!name.is_empty()).then(|| (name.to_string(), (status.to_string(), err.to_string())))
        })
        .collect()
}

/// The `linux-*.tsv` beside a corpus folder (`tcp/../linux-6.18.tsv`).
pub fn find_linux_tsv(corpus: &Path) -> Option<PathBuf> {
    let parent = corpus.parent()?;
    let mut found: Vec<PathBuf> = std::fs::read_dir(parent)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy().to_string())
                .is_some_and(|n| n.starts_with("linux-") && n.ends_with(".tsv"))
        })
        .collect();
    found.sort();
    found.pop()
}

/// `CONFORMANCE.md`: a table per folder and a line per failing or
/// unsupported script.
pub fn markdown(results: &[ScriptResult]) -> String {
    markdown_with_linux(results, None)
}

/// [`markdown`], saying for each failing script how Linux itself fares
/// (from [`parse_linux_tsv`]).
pub fn markdown_with_linux(
    results: &[ScriptResult],
    linux: Option<&BTreeMap<String, (String, String)>>,
) -> String {
    let mut o = String::new();
    o.push_str("# netpath TCP conformance (Linux packetdrill scripts)\n\n");
    o.push_str(
        "Generated by `netpath pkt --markdown ../shared/packetdrill/tcp > CONFORMANCE.md`: the \
         Linux TCP maintainers' packetdrill scripts (`../shared/packetdrill/tcp`) run against \
         netpath in virtual time (the stack at 192.0.2.2, the remote end at 192.0.2.1). Folders \
         whose feature netpath does not implement are \"not implemented\", not failures. \
         `conformance/expected.toml` records each script's status; \
         `crates/pkt/tests/conformance.rs` fails when a passing script regresses.\n\n",
    );
    let total = Counts::of(results);
    o.push_str("| folder | scripts | pass | fail | unsupported | not implemented |\n");
    o.push_str("|---|---:|---:|---:|---:|---:|\n");
    for (f, c) in Counts::by_folder(results) {
        let _ = writeln!(
            o,
            "| {f} | {} | {} | {} | {} | {} |",
            c.scripts,
            c.pass,
            c.fail,
            c.unsupported + c.error,
            c.not_implemented
        );
    }
    let _ = writeln!(
        o,
        "| **total** | **{}** | **{}** | **{}** | **{}** | **{}** |\n",
        total.scripts,
        total.pass,
        total.fail,
        total.unsupported + total.error,
        total.not_implemented
    );
    o.push_str("## Failing scripts (first mismatch)\n\n");
    for r in results {
        if let Outcome::Fail {
            line,
            expected,
            actual,
        } = &r.outcome
        {
            let on_linux = match linux.and_then(|l| l.get(&r.name)) {
                Some((st, _)) if st == "pass" => " (passes on Linux)".to_string(),
                Some((st, err)) => format!(" (Linux too: {st}: {})", md_escape(err)),
                None => String::new(),
            };
            let _ = writeln!(
                o,
                "- `{}` line {line}: expected `{}`, got `{}`{on_linux}",
                r.name,
                md_escape(expected),
                md_escape(actual)
            );
        }
    }
    o.push_str("\n## Unsupported scripts\n\n");
    for r in results {
        match (&r.outcome, Status::of(r)) {
            (Outcome::Unsupported { line, reason }, Status::Unsupported)
            | (Outcome::Error { line, reason }, _) => {
                let at = if *line > 0 {
                    format!(" line {line}")
                } else {
                    String::new()
                };
                let _ = writeln!(o, "- `{}`{at}: {}", r.name, md_escape(reason));
            }
            _ => {}
        }
    }
    o
}

/// `conformance/expected.toml`: one `"name" = "status"` line per script.
pub fn expected_toml(results: &[ScriptResult]) -> String {
    let mut o = String::from(
        "# The status netpath reaches on each Linux packetdrill script\n\
         # (../shared/packetdrill/tcp). crates/pkt/tests/conformance.rs fails when a\n\
         # script marked \"pass\" stops passing; refresh with\n\
         # `netpath pkt --expected ../shared/packetdrill/tcp > conformance/expected.toml`.\n\n\
         [scripts]\n",
    );
    for r in results {
        let _ = writeln!(o, "\"{}\" = \"{}\"", r.name, Status::of(r).as_str());
    }
    o
}

/// Parses [`expected_toml`]'s format: script name → status.
pub fn parse_expected(text: &str) -> Result<BTreeMap<String, Status>, String> {
    let mut m = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with('[') {
            continue;
        }
        let bad = || format!("line {}: expected `\"name\" = \"status\"`", i + 1);
        let (k, v) = l.split_once('=').ok_or_else(bad)?;
        let k = k.trim().trim_matches('"');
        let v = v.trim().trim_matches('"');
        let s = Status::parse(v).ok_or_else(|| format!("line {}: unknown status {v:?}", i + 1))?;
        m.insert(k.to_string(), s);
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_round_trips() {
        let rs = vec![
            ScriptResult {
                name: "a/x.pkt".into(),
                outcome: Outcome::Pass,
            },
            ScriptResult {
                name: "md5/y.pkt".into(),
                outcome: Outcome::Unsupported {
                    line: 0,
                    reason: format!("{NOT_IMPLEMENTED_PREFIX}: TCP MD5 signatures"),
                },
            },
        ];
        let m = parse_expected(&expected_toml(&rs)).unwrap();
        assert_eq!(m["a/x.pkt"], Status::Pass);
        assert_eq!(m["md5/y.pkt"], Status::NotImplemented);
        assert!(markdown(&rs).contains("| md5 | 1 | 0 | 0 | 0 | 1 |"));
        let j = to_json(&rs);
        assert!(j.contains("\"status\":\"not-implemented\""), "{j}");
        assert!(j.contains("\"not_implemented\":1"), "{j}");
        assert!(j.ends_with("\"exit_status\":0}"), "{j}");
    }

    /// packetdrill's own `TFO_COOKIE` for its addresses (run_all.py).
    #[test]
    fn tfo_cookie_as_packetdrill() {
        assert_eq!(
            tfo_cookie(Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 168, 0, 2)),
            "de4f234f0f433a55"
        );
    }

    /// Every folder of the corpus runs: none is set aside as "not
    /// implemented" any more (the mechanism stays for new folders).
    #[test]
    fn no_folder_is_set_aside() {
        for f in [
            "timestamping",
            "md5",
            "sendfile",
            "splice",
            "fastopen",
            "zerocopy",
        ] {
            assert_eq!(not_implemented(&format!("{f}/x.pkt")), None, "{f}");
        }
        let r = run_text("timestamping/x.pkt", "garbage", DEFAULT_WALL_LIMIT);
        assert_eq!(Status::of(&r), Status::Error);
    }

    #[test]
    fn a_passive_open_runs_on_netpath() {
        let text = "\
0   socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0  setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0  bind(3, ..., ...) = 0
+0  listen(3, 1) = 0
+0  < S 0:0(0) win 32792 <mss 1000,nop,nop,sackOK,nop,wscale 7>
+0  > S. 0:0(0) ack 1 <...>
+.1 < . 1:1(0) ack 1 win 257
+0  accept(3, ..., ...) = 4
";
        let r = run_text("x/passive.pkt", text, DEFAULT_WALL_LIMIT);
        assert_eq!(r.outcome, Outcome::Pass, "{}", r.line());
    }
}
