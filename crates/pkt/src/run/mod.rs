//! The packetdrill runner's execution engine.
//!
//! A stack under test implements [`PktHost`]; [`run_script`] plays a parsed
//! [`Script`] against it in virtual time with packetdrill's semantics and
//! returns an [`Outcome`]. The pieces:
//!
//! - [`host`]: the [`PktHost`] trait and its value types;
//! - [`plan`]: script → typed steps (decoded syscalls, shell commands);
//! - [`engine`] (private): the clock, tolerance, blocking calls and the
//!   packet queue; [`mapping`] and [`matcher`] turn script numbers into
//!   absolute ones and compare sent segments; [`packet`] builds and parses
//!   real IPv4 packets;
//! - [`pyeval`], [`shell`], [`consts`]: `%{ }%` blocks, backtick commands,
//!   Linux constants;
//! - [`report`]: result lines, folder summaries, JSON, exit status.
//!
//! ```
//! use netpath_pkt::run::{plan::plan, RunOptions};
//! let script = netpath_pkt::parse("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n").unwrap();
//! assert_eq!(plan(&script).unwrap().steps.len(), 1);
//! assert_eq!(RunOptions::default().tolerance_usecs, 4000);
//! ```

pub mod consts;
mod engine;
pub mod host;
pub mod mapping;
pub mod matcher;
pub mod packet;
pub mod plan;
pub mod pyeval;
pub mod report;
pub mod shell;
mod syscall;
#[cfg(test)]
mod tests;

pub use host::{
    Errno, OptValue, PktHost, PollFd, SpliceCall, SysError, SysResult, TcpInfo, Unsupported,
};
pub use report::{exit_status, ScriptResult, Summary};

use crate::ast::Script;
use std::fmt;
use std::net::Ipv4Addr;

/// How to run scripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// Timing tolerance (packetdrill's `--tolerance_usecs`, default 4 ms);
    /// a script's own `--tolerance_usecs` overrides it.
    pub tolerance_usecs: u64,
    /// The stack's address (the script's `--local_ip`, default
    /// 192.168.0.1, is mapped to it).
    pub local_ip: Ipv4Addr,
    /// The remote end's address (the script's `--remote_ip`, default
    /// 192.0.2.1, is mapped to it).
    pub remote_ip: Ipv4Addr,
    /// The port `bind(fd, ..., ...)` uses (packetdrill: 8080).
    pub bind_port: u16,
    /// The remote port `connect(fd, ..., ...)` uses (packetdrill: 8080).
    pub connect_port: u16,
    /// The remote port of the first connection an injected SYN opens; each
    /// further one takes the next.
    pub remote_port_base: u16,
    /// Added to the script's sequence numbers of injected packets.
    pub remote_isn: u32,
    /// Apply `defaults.sh`'s sysctls before each script.
    pub apply_defaults: bool,
    /// A default sysctl the host rejects makes the script unsupported
    /// (otherwise it is ignored).
    pub strict_defaults: bool,
    /// How long a `*` event may wait, in microseconds.
    pub any_time_limit_usecs: u64,
    /// Fail on packets the stack sends after the last `>` line. packetdrill
    /// ignores them (`blocking/blocking-write.pkt` passes on Linux only
    /// because of that), so the default is `false`; a packet before a later
    /// exact-time `>` line always fails.
    pub trailing_packets_fail: bool,
    /// Symbols substituted in the script's text before it is parsed
    /// (packetdrill's `-D NAME=VALUE`), e.g. `TFO_COOKIE`.
    pub defines: Vec<(String, String)>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            tolerance_usecs: 4000,
            local_ip: Ipv4Addr::new(192, 168, 0, 1),
            remote_ip: Ipv4Addr::new(192, 0, 2, 1),
            bind_port: 8080,
            connect_port: 8080,
            remote_port_base: 40_000,
            remote_isn: 0,
            apply_defaults: true,
            strict_defaults: false,
            any_time_limit_usecs: 10_000_000,
            trailing_packets_fail: false,
            defines: Vec::new(),
        }
    }
}

/// `text` with each whole-word occurrence of a define's name replaced by
/// its value.
pub fn apply_defines(text: &str, defines: &[(String, String)]) -> String {
    if defines.is_empty() {
        return text.to_string();
    }
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(word) {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let end = tail.find(|c: char| !word(c)).unwrap_or(tail.len());
        let w = &tail[..end];
        match defines.iter().find(|(n, _)| n == w) {
            Some((_, v)) => out.push_str(v),
            None => out.push_str(w),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// How a script ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Everything happened as the script says.
    Pass,
    /// The stack did something else.
    Fail {
        /// The script line.
        line: u32,
        /// What the script wanted.
        expected: String,
        /// What happened.
        actual: String,
    },
    /// The script needs something the runner or the host does not have.
    Unsupported {
        /// The script line (0: the script as a whole).
        line: u32,
        /// What.
        reason: String,
    },
    /// The script could not be run (parse or plan error, unreadable file).
    Error {
        /// The script line (0: unknown).
        line: u32,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Pass => write!(f, "pass"),
            Outcome::Fail {
                line,
                expected,
                actual,
            } => write!(f, "fail at line {line}: expected {expected}, got {actual}"),
            Outcome::Unsupported { line: 0, reason } => write!(f, "unsupported: {reason}"),
            Outcome::Unsupported { line, reason } => {
                write!(f, "unsupported at line {line}: {reason}")
            }
            Outcome::Error { line: 0, reason } => write!(f, "error: {reason}"),
            Outcome::Error { line, reason } => write!(f, "error at line {line}: {reason}"),
        }
    }
}

/// Runs a parsed script against a host.
pub fn run_script(script: &Script, host: &mut dyn PktHost, opts: &RunOptions) -> Outcome {
    let plan = match plan::plan(script) {
        Ok(p) => p,
        Err(e) => {
            return Outcome::Error {
                line: e.line,
                reason: e.msg,
            }
        }
    };
    run_plan(&plan, host, opts)
}

/// Runs an already planned script.
pub fn run_plan(plan: &plan::Plan, host: &mut dyn PktHost, opts: &RunOptions) -> Outcome {
    if let Some(u) = plan.settings.unsupported.first() {
        return Outcome::Unsupported {
            line: 0,
            reason: u.clone(),
        };
    }
    engine::Engine::new(host, opts, &plan.settings).run(&plan.steps)
}

/// Parses and runs one script's text; a parse error becomes
/// [`Outcome::Error`] with its line.
pub fn run_source(
    name: &str,
    text: &str,
    host: &mut dyn PktHost,
    opts: &RunOptions,
) -> ScriptResult {
    let text = apply_defines(text, &opts.defines);
    let outcome = match crate::parse(&text) {
        Ok(script) => run_script(&script, host, opts),
        Err(e) => Outcome::Error {
            line: e.line,
            reason: e.to_string(),
        },
    };
    ScriptResult {
        name: name.to_string(),
        outcome,
    }
}
