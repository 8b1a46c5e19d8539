//! `iptables -L -v -x -n` rendering (`print_firewall` in iptables'
//! `iptables.c`): exact counters, numeric addresses.

use core::fmt::Write;

use super::rule::{flag_names, Rule, Target};
use super::table::ChainView;

/// The chain's listing: header, column titles, one line per rule.
pub(crate) fn verbose(c: &ChainView<'_>) -> String {
    let mut s = String::new();
    // Writing into a String cannot fail.
    let _ = write_chain(&mut s, c);
    s
}

fn write_chain(s: &mut String, c: &ChainView<'_>) -> core::fmt::Result {
    match (c.policy(), c.policy_counters()) {
        (Some(p), Some(n)) => writeln!(
            s,
            "Chain {} (policy {p} {} packets, {} bytes)",
            c.name(),
            n.packets,
            n.bytes
        )?,
        _ => writeln!(s, "Chain {} ({} references)", c.name(), c.references())?,
    }
    write!(
        s,
        "{:>8} {:>10} {:<10} {:<4} {:<3} {:<6} {:<6} {:<20} {:<20}",
        "pkts", "bytes", "target", "prot", "opt", "in", "out", "source", "destination"
    )?;
    end_line(s);
    for e in c.rules() {
        let r = e.rule();
        let n = e.counters();
        let bang = |neg: bool| if neg { "!" } else { "" };
        let prot = match r.proto {
            Some(p) => format!("{}{}", bang(p.negated), p.value),
            None => "all".to_string(),
        };
        let opt = match r.fragment {
            Some(f) if f.negated => "!f",
            Some(_) => "-f",
            None => "--",
        };
        let dev = |d: Option<super::rule::Cond<crate::dev::IfIndex>>| match d {
            Some(d) => format!("{}{}", bang(d.negated), d.value),
            None => "*".to_string(),
        };
        let net = |a: Option<super::rule::Cond<super::rule::Net>>| match a {
            Some(a) => format!("{}{}", bang(a.negated), a.value),
            None => "0.0.0.0/0".to_string(),
        };
        write!(
            s,
            "{:>8} {:>10} {:<10} {:<4} {:<3} {:<6} {:<6} {:<20} {:<20}",
            n.packets,
            n.bytes,
            r.target.as_ref().map_or("", Target::name),
            prot,
            opt,
            dev(r.in_dev),
            dev(r.out_dev),
            net(r.src),
            net(r.dst),
        )?;
        extras(s, r)?;
        end_line(s);
    }
    Ok(())
}

/// Ends a line without its trailing padding.
fn end_line(s: &mut String) {
    while s.ends_with(' ') {
        s.pop();
    }
    s.push('\n');
}

/// The match and target options iptables prints after the columns.
fn extras(s: &mut String, r: &Rule) -> core::fmt::Result {
    let bang = |neg: bool| if neg { "!" } else { "" };
    if r.sport.is_some() || r.dport.is_some() || r.tcp_flags.is_some() {
        let module = r.proto.map_or("tcp".to_string(), |p| p.value.to_string());
        write!(s, " {module}")?;
        for (p, one, many) in [(r.sport, "spt", "spts"), (r.dport, "dpt", "dpts")] {
            if let Some(p) = p {
                let name = if p.value.lo == p.value.hi { one } else { many };
                write!(s, " {name}:{}{}", bang(p.negated), p.value)?;
            }
        }
        if let Some(f) = r.tcp_flags {
            write!(s, " flags:{}", bang(f.negated))?;
            let mut names = String::new();
            flag_names(f.value.mask, &mut names);
            names.push('/');
            flag_names(f.value.comp, &mut names);
            s.push_str(&names);
        }
    }
    if let Some(i) = r.icmp {
        let m = i.value;
        if m.ty == u8::MAX {
            write!(s, " icmp {}any", bang(i.negated))?;
        } else if m.code_min == 0 && m.code_max == u8::MAX {
            write!(s, " icmp {}type {}", bang(i.negated), m.ty)?;
        } else {
            write!(
                s,
                " icmp {}type {} code {}",
                bang(i.negated),
                m.ty,
                m.code_min
            )?;
        }
    }
    if let Some(m) = r.mark {
        write!(
            s,
            " mark match {}{:#x}/{:#x}",
            bang(m.negated),
            m.value.value,
            m.value.mask
        )?;
    }
    if let Some(c) = r.ctstate {
        let (states, legacy) = c.value;
        let word = if legacy { "state" } else { "ctstate" };
        write!(s, " {word} {}{states}", bang(c.negated))?;
    }
    match &r.target {
        Some(Target::Snat { addr, ports }) => {
            write!(s, " to:{addr}")?;
            if let Some(p) = ports {
                write!(s, ":{}-{}", p.lo, p.hi)?;
            }
        }
        Some(Target::Dnat { addr, port }) => {
            write!(s, " to:{addr}")?;
            if let Some(p) = port {
                write!(s, ":{p}")?;
            }
        }
        Some(Target::Masquerade { ports: Some(p) }) => {
            write!(s, " masq ports: {}-{}", p.lo, p.hi)?;
        }
        Some(Target::Reject(w)) => write!(s, " reject-with {}", w.name())?,
        Some(Target::Log { prefix }) => write!(s, " LOG flags 0 level 4 prefix \"{prefix}\"")?,
        Some(Target::Mark { value, mask }) => write!(s, " MARK xset {value:#x}/{mask:#x}")?,
        Some(Target::Goto(c)) => write!(s, " [goto] {c}")?,
        _ => {}
    }
    Ok(())
}
