//! Backtick shell commands: the few the runner understands (`defaults.sh`,
//! `sysctl -q name=value`, `set_sysctls.py /proc/sys/...=value`, the
//! sysctl-restore script, the `rm -f` / `dd if=/dev/zero` that make a test
//! file, a `grep` of `/proc/net/tcp`) and the Linux defaults that
//! `defaults.sh` sets. Files are the host's own (in memory): the runner
//! never touches the real filesystem.

/// A shell command the runner can carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellCmd {
    /// `../common/defaults.sh`: apply [`DEFAULT_SYSCTLS`].
    Defaults,
    /// Set one sysctl (dotted name, value as written).
    Sysctl {
        /// `net.ipv4.tcp_sack`.
        name: String,
        /// `0`.
        value: String,
    },
    /// A command with no effect on a fresh virtual stack (the raw text),
    /// such as restoring the sysctls saved by `defaults.sh`.
    Noop(String),
    /// `tc qdisc replace dev DEV root pfifo [limit N]`: the test device's
    /// root qdisc becomes a packet FIFO of `limit` packets (`None`: the
    /// device's tx queue length, as tc's default).
    RootPfifo {
        /// Packets.
        limit: Option<u32>,
    },
    /// `ip route {change|replace|add} DST[/LEN] [via GW] [dev DEV]
    /// [advmss N] [mtu [lock] N] [initcwnd N]`: the route to `DST` out of
    /// the test device (a point-to-point tun in packetdrill, so the
    /// gateway changes nothing) with those metrics.
    Route(RouteSpec),
    /// `ip tcp_metrics flush all`.
    FlushTcpMetrics,
    /// `ethtool -K DEV {gso|tso|gro|lro} off …`: offloads off on the test
    /// device; `gso` when GSO or TSO is among them (TCP then hands the
    /// layers below one skb per segment; the wire shows the same frames).
    OffloadsOff {
        /// GSO (or TSO) is among the offloads turned off.
        gso: bool,
    },
    /// `nstat`: remembers the counters (nstat prints what changed since
    /// its last run).
    NstatReset,
    /// `nstat | grep NAME`: NAME changed since the last `nstat` (else grep
    /// fails, and so does the script).
    NstatHas(String),
    /// `rm -f PATH`: the host's file PATH is gone (if it was there).
    RemoveFile(String),
    /// `dd bs=B count=N if=/dev/zero of=PATH [status=none]`: the host's file
    /// PATH now holds `len` (B × N) zero bytes.
    WriteZeros {
        /// The file.
        path: String,
        /// Its new length.
        len: u64,
    },
}

/// The route an `ip route` command sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// Destination prefix.
    pub dst: std::net::Ipv4Addr,
    /// Prefix length.
    pub prefix_len: u8,
    /// `advmss N`.
    pub advmss: Option<u32>,
    /// `mtu N`.
    pub mtu: Option<u32>,
    /// `mtu lock N`.
    pub mtu_lock: bool,
    /// `initcwnd N`.
    pub initcwnd: Option<u32>,
}

/// Sysctls Linux 6.18 does not have: a command setting one fails there
/// (and the alternative after `||` runs).
const ABSENT_SYSCTLS: &[&str] = &["net.ipv4.tcp_fastopen_cookies"];

/// The line without output redirections to `/dev/null`.
fn strip_redirections(line: &str) -> String {
    let mut out = line.to_string();
    for r in [
        "&> /dev/null",
        "&>/dev/null",
        "2>&1",
        "> /dev/null",
        ">/dev/null",
    ] {
        out = out.replace(r, " ");
    }
    out
}

/// One command of a line (no `||`).
fn parse_one(line: &str) -> Result<Vec<ShellCmd>, String> {
    let toks = tokens(line);
    match toks.as_slice() {
        ["ip", "tcp_metrics", "flush", ..] => Ok(vec![ShellCmd::FlushTcpMetrics]),
        ["nstat"] => Ok(vec![ShellCmd::NstatReset]),
        ["nstat", "|", "grep", name] => Ok(vec![ShellCmd::NstatHas(name.to_string())]),
        ["rm" | "/bin/rm", "-f", path] => Ok(vec![ShellCmd::RemoveFile(path.to_string())]),
        ["dd" | "/bin/dd", ..] => dd_zeros(&toks[1..]).ok_or_else(|| line.to_string()),
        _ if proc_net_tcp_grep(&toks) => Ok(vec![ShellCmd::Noop(line.to_string())]),
        _ => Err(line.to_string()),
    }
}

/// What packetdrill's `../common/defaults.sh` sets (see
/// `../shared/packetdrill/README.md`); its `pfifo` root qdisc on the test
/// device is the adapter's business.
pub const DEFAULT_SYSCTLS: &[(&str, &str)] = &[
    ("net.ipv4.tcp_rmem", "4096 540000 15728640"),
    ("net.ipv4.tcp_wmem", "4096 262144 4194304"),
    ("net.ipv4.tcp_timestamps", "1"),
    ("net.ipv4.tcp_syn_retries", "5"),
    ("net.ipv4.tcp_synack_retries", "5"),
    ("net.ipv4.tcp_frto", "2"),
    ("net.ipv4.tcp_sack", "1"),
    ("net.ipv4.tcp_dsack", "1"),
    ("net.ipv4.tcp_fack", "0"),
    ("net.ipv4.tcp_reordering", "3"),
    ("net.ipv4.tcp_congestion_control", "cubic"),
    ("net.ipv4.tcp_slow_start_after_idle", "0"),
    ("net.ipv4.tcp_early_retrans", "4"),
    ("net.ipv4.tcp_recovery", "1"),
    ("net.ipv4.tcp_tso_win_divisor", "3"),
    ("net.ipv4.tcp_ecn", "0"),
    ("net.ipv4.tcp_ecn_option", "2"),
    ("net.ipv4.tcp_pacing_ss_ratio", "200"),
    ("net.ipv4.tcp_pacing_ca_ratio", "120"),
    ("net.ipv4.tcp_notsent_lowat", "4294967295"),
    ("net.ipv4.tcp_fastopen", "0x70403"),
    (
        "net.ipv4.tcp_fastopen_key",
        "a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4",
    ),
    ("net.ipv4.tcp_syncookies", "1"),
];

/// `/proc/sys/net/ipv4/x` or `net.ipv4.x` → `net.ipv4.x`.
fn sysctl_name(path: &str) -> Option<String> {
    let name = path
        .strip_prefix("/proc/sys/")
        .unwrap_or(path)
        .replace('/', ".");
    let ok = name.starts_with("net.")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
    ok.then_some(name)
}

/// `name=value` tokens as sysctls, or `None` if one is not.
fn assignments<'a>(toks: impl Iterator<Item = &'a str>) -> Option<Vec<ShellCmd>> {
    let mut out = Vec::new();
    for t in toks {
        let (n, v) = t.split_once('=')?;
        let v = v.trim_matches(|c| c == '"' || c == '\'');
        out.push(ShellCmd::Sysctl {
            name: sysctl_name(n)?,
            value: v.to_string(),
        });
    }
    (!out.is_empty()).then_some(out)
}

/// The commands of a backtick block (one per line, `\` continuations
/// joined), or `Err(line)` with the first line the runner cannot run.
pub fn parse(raw: &str) -> Result<Vec<ShellCmd>, String> {
    let joined = raw.replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        let line = strip_comment(line).trim();
        let stripped = strip_redirections(line);
        if stripped.contains("||") {
            // `a || b`: b runs when a fails, as a sysctl Linux lacks does.
            let alts: Vec<&str> = stripped.split("||").map(str::trim).collect();
            let mut chosen = None;
            for alt in &alts {
                let cmds = match parse(alt) {
                    Ok(c) => c,
                    Err(_) => parse_one(alt)?,
                };
                let fails = cmds.iter().any(|c| {
                    matches!(c, ShellCmd::Sysctl { name, .. } if ABSENT_SYSCTLS.contains(&name.as_str()))
                });
                if !fails {
                    chosen = Some(cmds);
                    break;
                }
            }
            out.extend(chosen.ok_or_else(|| line.to_string())?);
            continue;
        }
        if let Ok(cmds) = parse_one(stripped.trim()) {
            out.extend(cmds);
            continue;
        }
        let toks = tokens(line);
        let Some(&first) = toks.first() else {
            continue;
        };
        if toks.len() == 1 && first.ends_with("common/defaults.sh") {
            out.push(ShellCmd::Defaults);
        } else if toks.len() == 1
            && first.starts_with("/tmp/sysctl_restore_")
            && first.ends_with(".sh")
        {
            out.push(ShellCmd::Noop(line.to_string()));
        } else if first == "sysctl" {
            let rest = toks[1..].iter().copied().filter(|t| !t.starts_with('-'));
            out.extend(assignments(rest).ok_or_else(|| line.to_string())?);
        } else if first.ends_with("set_sysctls.py") {
            out.extend(assignments(toks[1..].iter().copied()).ok_or_else(|| line.to_string())?);
        } else if let Some(cmd) = module_param(&toks) {
            out.push(cmd);
        } else if let Some(r) = ip_route(&toks) {
            out.push(ShellCmd::Route(r));
        } else if ethtool_offloads_off(&toks) {
            let gso = toks[3..].chunks(2).any(|p| matches!(p[0], "gso" | "tso"));
            out.push(ShellCmd::OffloadsOff { gso });
        } else if let Some(limit) = root_pfifo(&toks) {
            out.push(ShellCmd::RootPfifo { limit });
        } else if let Some(cmds) = assignments(toks.iter().copied()) {
            // A continuation line of a multi-line sysctl command.
            out.extend(cmds);
        } else {
            return Err(line.to_string());
        }
    }
    Ok(out)
}

/// `ip route {change|replace|add} DST[/LEN] …` with the keywords netpath
/// routes have; `None` for anything else.
fn ip_route(toks: &[&str]) -> Option<RouteSpec> {
    let ["ip", "route", "change" | "replace" | "add", dst, rest @ ..] = toks else {
        return None;
    };
    let (addr, len) = match dst.split_once('/') {
        Some((a, l)) => (a, l.parse().ok().filter(|l: &u8| *l <= 32)?),
        None => (*dst, 32),
    };
    let mut r = RouteSpec {
        dst: addr.parse().ok()?,
        prefix_len: len,
        advmss: None,
        mtu: None,
        mtu_lock: false,
        initcwnd: None,
    };
    let mut i = 0;
    while i < rest.len() {
        let arg = |k: usize| rest.get(i + k).copied();
        match rest[i] {
            "via" => {
                let _: std::net::Ipv4Addr = arg(1)?.parse().ok()?;
                i += 2;
            }
            "dev" => {
                arg(1)?;
                i += 2;
            }
            "advmss" => {
                r.advmss = Some(arg(1)?.parse().ok()?);
                i += 2;
            }
            "initcwnd" => {
                r.initcwnd = Some(arg(1)?.parse().ok()?);
                i += 2;
            }
            "mtu" if arg(1) == Some("lock") => {
                r.mtu = Some(arg(2)?.parse().ok()?);
                r.mtu_lock = true;
                i += 3;
            }
            "mtu" => {
                r.mtu = Some(arg(1)?.parse().ok()?);
                i += 2;
            }
            _ => return None,
        }
    }
    Some(r)
}

/// `dd`'s operands when they copy `count` blocks of `/dev/zero` into a
/// file (`bs=` defaults to 512 as in dd; `status=` only changes what dd
/// prints); anything else (`seek=`, `conv=`, another input) is not mapped.
fn dd_zeros(operands: &[&str]) -> Option<Vec<ShellCmd>> {
    let (mut bs, mut count, mut input, mut out) = (512u64, None, None, None);
    for op in operands {
        let (k, v) = op.split_once('=')?;
        match k {
            "bs" => bs = v.parse().ok()?,
            "count" => count = Some(v.parse::<u64>().ok()?),
            "if" => input = Some(v),
            "of" => out = Some(v),
            "status" if matches!(v, "none" | "noxfer" | "progress") => {}
            _ => return None,
        }
    }
    if input != Some("/dev/zero") {
        return None;
    }
    let len = bs.checked_mul(count?)?;
    Some(vec![ShellCmd::WriteZeros {
        path: out?.to_string(),
        len,
    }])
}

/// `grep PATTERN /proc/net/tcp[6]… [| grep PATTERN]`: a diagnostic that
/// prints the socket table (the md5 scripts look at the listener's
/// reference count); it changes nothing and finds the listener, as on
/// Linux, so it succeeds and does nothing here.
fn proc_net_tcp_grep(toks: &[&str]) -> bool {
    let mut parts = toks.split(|t| *t == "|");
    let Some(["grep", _pattern, files @ ..]) = parts.next() else {
        return false;
    };
    let proc_tcp = |f: &&str| matches!(*f, "/proc/net/tcp" | "/proc/net/tcp6");
    !files.is_empty() && files.iter().all(proc_tcp) && parts.all(|p| matches!(p, ["grep", _]))
}

/// `ethtool -K DEV {gso|tso|gro|lro} off …`.
fn ethtool_offloads_off(toks: &[&str]) -> bool {
    let ["ethtool", "-K", _, pairs @ ..] = toks else {
        return false;
    };
    !pairs.is_empty()
        && pairs.len() % 2 == 0
        && pairs
            .chunks(2)
            .all(|p| matches!(p[0], "gso" | "tso" | "gro" | "lro") && p[1] == "off")
}

/// `echo V > /sys/module/M/parameters/P`: a module parameter, set as the
/// setting `M.P` (e.g. `tcp_cubic.hystart_detect`).
fn module_param(toks: &[&str]) -> Option<ShellCmd> {
    let ["echo", v, ">", path] = toks else {
        return None;
    };
    let rest = path.strip_prefix("/sys/module/")?;
    let (module, param) = rest.split_once("/parameters/")?;
    let ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    (ok(module) && ok(param)).then(|| ShellCmd::Sysctl {
        name: format!("{module}.{param}"),
        value: v.to_string(),
    })
}

/// `tc qdisc {replace|add|change} dev DEV root pfifo [limit N]`: the limit
/// (`Some(None)` without one), or `None` if the line is something else.
fn root_pfifo(toks: &[&str]) -> Option<Option<u32>> {
    match toks {
        ["tc", "qdisc", "replace" | "add" | "change", "dev", _, "root", "pfifo", rest @ ..] => {
            match rest {
                [] => Some(None),
                ["limit", n] => n.parse().ok().map(Some),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The line up to a `#` comment outside quotes.
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '#') => return &line[..i],
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
    }
    line
}

/// Whitespace-separated words; quoted text (`a="1 2 3"`) stays in one word.
fn tokens(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => {
                quote = Some(c);
                start.get_or_insert(i);
            }
            (None, c) if c.is_whitespace() => {
                if let Some(s) = start.take() {
                    out.push(&line[s..i]);
                }
            }
            (None, _) => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(s) = start {
        out.push(&line[s..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_file_commands() {
        // The shell block of sendfile/sendfile-simple.pkt.
        let cmds = parse(
            "../../common/defaults.sh\n/bin/rm -f /tmp/testfile\n/bin/dd bs=1 count=5 if=/dev/zero of=/tmp/testfile status=none\n",
        )
        .unwrap();
        assert_eq!(
            cmds,
            vec![
                ShellCmd::Defaults,
                ShellCmd::RemoveFile("/tmp/testfile".into()),
                ShellCmd::WriteZeros {
                    path: "/tmp/testfile".into(),
                    len: 5
                },
            ]
        );
        assert_eq!(
            parse("dd if=/dev/zero of=/tmp/f count=2").unwrap(),
            vec![ShellCmd::WriteZeros {
                path: "/tmp/f".into(),
                len: 1024
            }]
        );
        // Other shapes stay unsupported.
        for bad in [
            "rm /tmp/testfile",
            "rm -rf /tmp",
            "rm -f /tmp/a /tmp/b",
            "dd if=/dev/urandom of=/tmp/f bs=1 count=5",
            "dd if=/dev/zero of=/tmp/f bs=1",
            "dd if=/dev/zero of=/tmp/f bs=1 count=5 seek=3",
            "dd if=/dev/zero bs=1 count=5",
            "dd if=/dev/zero of=/tmp/f bs=x count=5",
        ] {
            assert_eq!(parse(bad), Err(bad.to_string()), "{bad}");
        }
    }

    #[test]
    fn proc_net_tcp_grep_is_a_noop() {
        let line = r#"grep " 0A " /proc/net/tcp /proc/net/tcp6 | grep ":1F90""#;
        assert_eq!(parse(line).unwrap(), vec![ShellCmd::Noop(line.into())]);
        assert!(parse(r#"grep " 0A " /proc/net/tcp"#).is_ok());
        for bad in [
            r#"grep " 0A " /etc/passwd"#,
            "grep x",
            r#"grep " 0A " /proc/net/tcp | wc -l"#,
            r#"cat /proc/net/tcp | grep x"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
