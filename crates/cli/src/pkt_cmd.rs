//! `netpath pkt`: runs packetdrill scripts (files or folders) against
//! netpath and reports each script (pass, fail with the line and what was
//! expected and seen, unsupported with the reason, not implemented), a
//! summary per folder, and exits 0 (everything that ran passed), 1 (some
//! failed) or 2 (some could not be run or parsed; bad arguments).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use netpath_pkt::run::exit_status;
use netpath_pkt::suite::{self, Counts};

#[derive(clap::Args)]
pub struct PktArgs {
    /// Print one JSON document (results, per-folder summaries, total).
    #[arg(long)]
    json: bool,
    /// Print the Markdown conformance report (CONFORMANCE.md).
    #[arg(long, conflicts_with = "json")]
    markdown: bool,
    /// Print the ratchet file (conformance/expected.toml).
    #[arg(long, conflicts_with_all = ["json", "markdown"])]
    expected: bool,
    /// Linux's results (`linux-*.tsv`) for the Markdown report; by default
    /// the one beside the first folder given, if any.
    #[arg(long)]
    linux: Option<PathBuf>,
    /// Also print each script's wall-clock time.
    #[arg(long)]
    verbose: bool,
    /// Wall-clock bound per script, in seconds.
    #[arg(long, default_value_t = 5.0)]
    time_limit: f64,
    /// Scripts or folders of scripts (searched recursively for *.pkt).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

pub fn run(args: PktArgs) -> ExitCode {
    if !(args.time_limit > 0.0 && args.time_limit.is_finite()) {
        eprintln!("netpath pkt: --time-limit must be a positive number of seconds");
        return ExitCode::from(2);
    }
    let limit = Duration::from_secs_f64(args.time_limit);
    let files = match suite::collect(&args.paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("netpath pkt: {e}");
            return ExitCode::from(2);
        }
    };
    let quiet_report = args.json || args.markdown || args.expected;
    // A panic in the stack is reported as that script's failure; keep the
    // default hook's backtrace noise off the report.
    std::panic::set_hook(Box::new(|_| {}));
    let mut results = Vec::with_capacity(files.len());
    for f in &files {
        let t = std::time::Instant::now();
        let r = suite::run_file(f, limit);
        if !quiet_report {
            if args.verbose {
                println!(
                    "{} ({:.0} ms)",
                    suite::result_line(&r),
                    t.elapsed().as_secs_f64() * 1e3
                );
            } else {
                println!("{}", suite::result_line(&r));
            }
        }
        results.push(r);
    }
    if args.json {
        println!("{}", suite::to_json(&results));
    } else if args.markdown {
        let tsv = args.linux.clone().or_else(|| {
            args.paths
                .iter()
                .filter(|p| p.is_dir())
                .find_map(|p| suite::find_linux_tsv(p))
        });
        let linux = tsv
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|t| suite::parse_linux_tsv(&t));
        print!("{}", suite::markdown_with_linux(&results, linux.as_ref()));
    } else if args.expected {
        print!("{}", suite::expected_toml(&results));
    } else {
        println!();
        for (folder, c) in Counts::by_folder(&results) {
            println!("{}", c.line(&folder));
        }
        println!("{}", Counts::of(&results).line("total"));
    }
    ExitCode::from(exit_status(&results) as u8)
}
