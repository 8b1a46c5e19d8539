//! The `netpath` command.

mod demo;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use netpath::sim::LinkConfig;
use netpath::time::Duration;

#[derive(Parser)]
#[command(
    name = "netpath",
    version,
    about = "A userspace TCP/IPv4 stack that follows the Linux packet path"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Two simulated hosts ping each other over a lossy link; prints what
    /// happened and writes a pcap.
    Demo(DemoArgs),
}

#[derive(clap::Args)]
struct DemoArgs {
    /// Seed of every random choice: the same seed gives the same run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Echo requests to send.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..))]
    count: u16,
    /// Milliseconds between requests.
    #[arg(long, default_value_t = 100)]
    interval_ms: u64,
    /// One-way latency in milliseconds.
    #[arg(long, default_value_t = 5)]
    latency_ms: u64,
    /// Link rate in Mbit/s (0: unlimited).
    #[arg(long, default_value_t = 10)]
    rate_mbps: u64,
    /// Probability that a frame is lost.
    #[arg(long, default_value_t = 0.10)]
    loss: f64,
    /// Probability that a frame is delivered twice.
    #[arg(long, default_value_t = 0.03)]
    duplicate: f64,
    /// Probability that a frame is held back (and overtaken).
    #[arg(long, default_value_t = 0.05)]
    reorder: f64,
    /// Probability that one bit of a frame is flipped.
    #[arg(long, default_value_t = 0.05)]
    corrupt: f64,
    /// Where to write the capture (pcap, frames with FCS).
    #[arg(long, default_value = "netpath-demo.pcap")]
    pcap: PathBuf,
    /// Print every event, not just the first 40.
    #[arg(long)]
    verbose: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => run_demo(args),
    }
}

fn run_demo(args: DemoArgs) -> ExitCode {
    let link = LinkConfig {
        latency: Duration::from_millis(args.latency_ms),
        bandwidth_bps: (args.rate_mbps > 0).then(|| args.rate_mbps.saturating_mul(1_000_000)),
        loss: args.loss,
        duplicate: args.duplicate,
        reorder: args.reorder,
        corrupt: args.corrupt,
        ..demo::DemoConfig::default().link
    };
    if let Err(e) = link.validate() {
        eprintln!("netpath demo: invalid link settings: {e}");
        return ExitCode::from(2);
    }
    let config = demo::DemoConfig {
        seed: args.seed,
        count: args.count,
        interval: Duration::from_millis(args.interval_ms),
        link,
    };
    let started = std::time::Instant::now();
    let report = match demo::run(&config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("netpath demo: {e}");
            return ExitCode::from(1);
        }
    };
    let wall = started.elapsed();
    print!(
        "{}",
        demo::render(&report, if args.verbose { usize::MAX } else { 40 })
    );
    println!("  wall time: {:.3} ms", wall.as_secs_f64() * 1e3);
    if let Err(e) = std::fs::write(&args.pcap, &report.pcap) {
        eprintln!("netpath demo: cannot write {}: {e}", args.pcap.display());
        return ExitCode::from(1);
    }
    println!(
        "  pcap: {} ({} frames as seen at host A's end of the link); read it with: tcpdump -r {} -nn -v",
        args.pcap.display(),
        report.pcap_frames,
        args.pcap.display()
    );
    ExitCode::SUCCESS
}
