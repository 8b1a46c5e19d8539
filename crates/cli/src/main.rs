//! The `netpath` command.

mod demo;
mod pkt_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
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
    /// A small network of netpath hosts (bridge, VLAN, router, firewall):
    /// ARP, pings, fragments, TTL expiry and a rejection, with the trace of
    /// the first packet, the counters, and a pcap.
    Demo(DemoArgs),
    /// Runs packetdrill scripts (files or folders) against netpath.
    Pkt(pkt_cmd::PktArgs),
}

#[derive(clap::Args)]
struct DemoArgs {
    /// Seed of every random choice: the same seed gives the same run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Loss probability on the router–H3 link.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Duplication probability on the router–H3 link.
    #[arg(long, default_value_t = 0.0)]
    duplicate: f64,
    /// Reordering probability on the router–H3 link.
    #[arg(long, default_value_t = 0.0)]
    reorder: f64,
    /// Bit-corruption probability on the router–H3 link.
    #[arg(long, default_value_t = 0.0)]
    corrupt: f64,
    /// One-way latency of the router–H3 link, in milliseconds.
    #[arg(long, default_value_t = 2)]
    latency_ms: u64,
    /// Where to write the capture of H1's link (pcap, frames with FCS).
    #[arg(long, default_value = "netpath-demo.pcap")]
    pcap: PathBuf,
    /// Print the whole trace, not just the first 60 lines.
    #[arg(long)]
    verbose: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => run_demo(args),
        Command::Pkt(args) => pkt_cmd::run(args),
    }
}

fn run_demo(args: DemoArgs) -> ExitCode {
    let mut config = demo::DemoConfig {
        seed: args.seed,
        ..demo::DemoConfig::default()
    };
    let far = &mut config.far_link;
    far.loss = args.loss;
    far.duplicate = args.duplicate;
    far.reorder = args.reorder;
    far.reorder_delay = Duration::from_millis(5);
    far.corrupt = args.corrupt;
    far.latency = Duration::from_millis(args.latency_ms);
    if let Err(e) = far.validate() {
        eprintln!("netpath demo: invalid link settings: {e}");
        return ExitCode::from(2);
    }
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
        demo::render(&report, if args.verbose { usize::MAX } else { 60 })
    );
    println!("  wall time: {:.3} ms", wall.as_secs_f64() * 1e3);
    if let Err(e) = std::fs::write(&args.pcap, &report.pcap) {
        eprintln!("netpath demo: cannot write {}: {e}", args.pcap.display());
        return ExitCode::from(1);
    }
    println!(
        "  pcap: {} ({} frames on H1's link); read it with: tcpdump -r {} -nn -e -v",
        args.pcap.display(),
        report.pcap_frames,
        args.pcap.display()
    );
    ExitCode::SUCCESS
}
