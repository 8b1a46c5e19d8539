//! `netpath demo` end to end: the binary runs, tells the story, writes a pcap
//! that reads back, and is deterministic per seed.

use std::path::PathBuf;
use std::process::Command;

use netpath_wire::pcap::PcapReader;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("netpath-demo-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn demo(args: &[&str], pcap: &PathBuf) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_netpath"))
        .arg("demo")
        .args(args)
        .arg("--pcap")
        .arg(pcap)
        .output()
        .expect("run netpath");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Output without the wall-clock line, which is the only non-virtual figure.
fn virtual_part(s: &str) -> String {
    s.lines()
        .filter(|l| !l.contains("wall time"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn default_demo_runs_every_step_and_writes_a_readable_pcap() {
    let pcap = tmp("default.pcap");
    let (code, out, err) = demo(&[], &pcap);
    assert_eq!(code, 0, "stderr: {err}");
    let outcome = |n: usize| -> String {
        let at = out.find(&format!("[{n}] ")).expect("step line");
        out[at..].lines().nth(1).unwrap_or_default().to_string()
    };
    assert!(
        outcome(1).contains("echo reply from 198.51.100.1 (ttl 63, 84 bytes)"),
        "{out}"
    );
    assert!(outcome(2).contains("echo reply from 198.51.100.1"), "{out}");
    assert!(
        outcome(3).contains("echo reply from 198.51.100.1 (ttl 63, 84 bytes)"),
        "VLAN host: {out}"
    );
    assert!(
        outcome(4).contains("(ttl 63, 4028 bytes)"),
        "fragmented ping: {out}"
    );
    assert!(
        outcome(5).contains("ICMP type 11 code 0") && outcome(5).contains("from 192.0.2.254"),
        "{out}"
    );
    assert!(outcome(6).contains("ICMP type 3 code 13"), "{out}");
    // The first packet's trace walks the seed's stages in order across hosts.
    let trace: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("the first echo request"))
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    let want = [
        "ip_queue_xmit",
        "ip_local_out",
        "dst_output",
        "ip_output",
        "ip_finish_output2",
        "neigh_resolve_output",
        "dev_queue_xmit",
        "nic_tx",
        "nic_rx",
        "netif_receive_skb",
        "br_handle_frame",
        "ip_rcv",
        "ip_forward",
        "icmp_rcv",
    ];
    let mut it = trace.iter();
    for w in want {
        assert!(
            // A TSO NIC sends the segment within a TSO burst.
            it.any(|p| *p == w || (w == "nic_tx" && *p == "nic_tx_tso")),
            "{w} missing or out of order in {trace:?}"
        );
    }
    assert!(
        out.contains("iptables:        1"),
        "the REJECT rule counted one packet: {out}"
    );
    assert!(
        out.contains("SW  fdb: 02:4e:50:00:02:00 vlan 10 port p2"),
        "{out}"
    );

    let bytes = std::fs::read(&pcap).unwrap();
    let reader = PcapReader::new(&bytes).unwrap();
    assert_eq!(reader.link_type(), 0x2400_0001, "Ethernet with FCS");
    let frames: Vec<_> = reader.map(|r| r.unwrap()).collect();
    let claimed: usize = out
        .lines()
        .find_map(|l| l.split("pcap: ").nth(1))
        .and_then(|rest| rest.split('(').nth(1))
        .and_then(|n| n.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("pcap line");
    assert_eq!(frames.len(), claimed);
    // First frame: H1's broadcast ARP request for its gateway.
    let f = &frames[0];
    assert_eq!(&f.data[0..6], &[0xff; 6]);
    assert_eq!(&f.data[12..14], &[0x08, 0x06]);
    assert_eq!(&f.data[38..42], &[192, 0, 2, 254]);
}

/// The TCP part: the transfer completes intact, the first data segment's
/// trace walks the seed's egress steps 1–7 on H1 and ingress 1–12 on H3
/// in order, the counters are there, and the TCP frames in the pcap decode.
#[test]
fn default_demo_runs_a_tcp_transfer_and_traces_its_first_segment() {
    let pcap = tmp("tcp.pcap");
    let (code, out, err) = demo(&[], &pcap);
    assert_eq!(code, 0, "stderr: {err}");
    let step7 = out.find("[7] H1 opens TCP").expect("TCP step");
    let outcome = out[step7..].lines().nth(1).unwrap_or_default();
    assert!(
        outcome.contains("2097152 of 2097152 bytes delivered intact"),
        "{out}"
    );
    assert!(out.contains("hashes match"), "{out}");

    // `  egress   3  tcp_transmit_skb  H1  +0.000 ms ...`
    let stages: Vec<(String, u8, String, String)> = out
        .lines()
        .skip_while(|l| !l.starts_with("TCP: the first data segment"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let path = w.next()?.to_string();
            let step = w.next()?.parse().ok()?;
            let (point, host) = match w.next()? {
                "(not" => {
                    w.next();
                    ("(not traced)".to_string(), w.next()?.to_string())
                }
                p => (p.to_string(), w.next()?.to_string()),
            };
            Some((path, step, point, host))
        })
        .collect();
    let mut seen: Vec<(&str, u8)> = stages.iter().map(|s| (s.0.as_str(), s.1)).collect();
    seen.dedup();
    let mut want: Vec<(&str, u8)> = (1..=7).map(|s| ("egress", s)).collect();
    want.extend((1..=12).map(|s| ("ingress", s)));
    assert_eq!(seen, want, "{out}");
    for (path, step, point, host) in &stages {
        let on = if path == "egress" { "H1" } else { "H3" };
        assert_eq!(host, on, "{path} {step} {point}");
        if (path == "egress" && *step != 6) || (path == "ingress" && *step >= 8) {
            assert_ne!(point, "(not traced)", "{path} {step} must be traced: {out}");
        }
    }
    let points: Vec<&str> = stages.iter().map(|s| s.2.as_str()).collect();
    let order = [
        "tcp_sendmsg",
        "tcp_transmit_skb",
        "ip_queue_xmit",
        "ip_output",
        "dev_queue_xmit",
        "nic_tx",
        "nic_rx",
        "netif_receive_skb",
        "ip_rcv",
        "ip_local_deliver",
        "tcp_v4_rcv",
        "tcp_data_queue",
        "sock_def_readable",
        "tcp_recvmsg",
        "consume_skb",
    ];
    let mut it = points.iter();
    for w in order {
        assert!(
            // A TSO NIC sends the segment within a TSO burst.
            it.any(|p| *p == w || (w == "nic_tx" && *p == "nic_tx_tso")),
            "{w} missing or out of order in {points:?}"
        );
    }

    // netstat -s: both ends counted the connection and its segments.
    let counter = |host: &str, name: &str| -> u64 {
        let sect = out
            .split("netstat -s")
            .nth(1)
            .and_then(|s| s.split(&format!("  {host} (")).nth(1))
            .unwrap_or_default();
        let sect = sect.split("\n  H").next().unwrap_or_default();
        sect.split("  ")
            .map(str::trim)
            .find_map(|c| c.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    assert_eq!(counter("H1", "ActiveOpens"), 1, "{out}");
    assert_eq!(counter("H3", "PassiveOpens"), 1, "{out}");
    assert!(counter("H1", "OutSegs") > 1400, "{out}");
    assert!(counter("H3", "InSegs") > 1400, "{out}");
    assert!(counter("H1", "TCPOrigDataSent") > 1400, "{out}");
    assert!(out.contains("client tcp_info: rtt "), "{out}");

    // The TCP frames are in the capture, and tshark (or tcpdump) reads them.
    let bytes = std::fs::read(&pcap).unwrap();
    let tcp_frames = PcapReader::new(&bytes)
        .unwrap()
        .map(|r| r.unwrap())
        .filter(|f| f.data.get(12..14) == Some(&[0x08, 0x00]) && f.data.get(23) == Some(&6))
        .count();
    assert!(tcp_frames > 2000, "{tcp_frames} TCP frames");
    let decoded = if on_path("tshark") {
        Some(tool_lines(
            Command::new("tshark").arg("-r").arg(&pcap).args([
                "-Y",
                "tcp.port == 5001 && !_ws.malformed && !_ws.expert.severity >= warning",
            ]),
        ))
    } else if on_path("tcpdump") {
        Some(tool_lines(
            Command::new("tcpdump")
                .args(["-nn", "-r"])
                .arg(&pcap)
                .arg("tcp port 5001"),
        ))
    } else {
        assert!(
            std::env::var("NETPATH_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "NETPATH_REQUIRE_TOOLS=1 but neither tshark nor tcpdump is on PATH"
        );
        println!("skipped the pcap decode: neither tshark nor tcpdump on PATH");
        None
    };
    if let Some(n) = decoded {
        assert_eq!(n, tcp_frames, "every TCP frame decodes cleanly");
    }
}

fn on_path(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn tool_lines(cmd: &mut Command) -> usize {
    let out = cmd.output().expect("run the pcap reader");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[test]
fn same_seed_same_run_other_seed_differs() {
    let (p1, p2, p3) = (tmp("s1.pcap"), tmp("s2.pcap"), tmp("s3.pcap"));
    let lossy = ["--loss", "0.3", "--reorder", "0.2", "--duplicate", "0.2"];
    let args =
        |seed: &'static str| -> Vec<&'static str> { [&["--seed", seed][..], &lossy[..]].concat() };
    let (_, o1, _) = demo(&args("7"), &p1);
    let (_, o2, _) = demo(&args("7"), &p2);
    let (_, _, _) = demo(&args("8"), &p3);
    let strip = |s: &str| {
        virtual_part(s)
            .replace(p1.to_str().unwrap(), "P")
            .replace(p2.to_str().unwrap(), "P")
    };
    assert_eq!(strip(&o1), strip(&o2));
    assert_eq!(std::fs::read(&p1).unwrap(), std::fs::read(&p2).unwrap());
    assert_ne!(std::fs::read(&p1).unwrap(), std::fs::read(&p3).unwrap());
}

#[test]
fn a_dead_far_link_loses_the_pings_but_not_the_router_answers() {
    let pcap = tmp("dead.pcap");
    let (code, out, _) = demo(&["--loss", "1"], &pcap);
    assert_eq!(code, 0);
    assert!(
        out.contains("[1] H1 pings H3") && out.contains("-> no answer"),
        "{out}"
    );
    assert!(
        out.contains("ICMP type 11 code 0"),
        "R still answers the TTL probe: {out}"
    );
    assert!(out.contains("lost "), "{out}");
}

#[test]
fn bad_arguments_are_clear_errors() {
    let pcap = tmp("bad.pcap");
    let (code, _, err) = demo(&["--loss", "1.5"], &pcap);
    assert_eq!(code, 2);
    assert!(
        err.contains("invalid link settings") && err.contains("loss"),
        "{err}"
    );
    let (code, _, err) = demo(&["--pcap-nonsense"], &pcap);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = demo(&[], &PathBuf::from("/nonexistent-dir/x.pcap"));
    assert_eq!(code, 1);
    assert!(err.contains("cannot write"), "{err}");
}
