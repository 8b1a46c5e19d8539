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
fn default_demo_runs_and_writes_a_readable_pcap() {
    let pcap = tmp("default.pcap");
    let (code, out, err) = demo(&[], &pcap);
    assert_eq!(code, 0, "stderr: {err}");
    assert!(out.contains("host A 192.0.2.1"), "{out}");
    assert!(
        out.contains("send echo request seq=1 (102 bytes on the wire)"),
        "{out}"
    );
    assert!(out.contains("A: 20 echo requests sent"), "{out}");
    assert!(out.contains("drops by reason: LINK_LOSS"), "{out}");

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
    // The first frame is A's first echo request: 98 bytes + FCS, at t = 0.
    let f = &frames[0];
    assert_eq!((f.ts_sec, f.ts_frac, f.data.len()), (0, 0, 102));
    assert_eq!(&f.data[26..30], &[192, 0, 2, 1]);
    assert_eq!(f.data[34], 8, "ICMP echo request");
}

#[test]
fn same_seed_same_run_other_seed_differs() {
    let (p1, p2, p3) = (tmp("s1.pcap"), tmp("s2.pcap"), tmp("s3.pcap"));
    let (_, o1, _) = demo(&["--seed", "7", "--count", "50"], &p1);
    let (_, o2, _) = demo(&["--seed", "7", "--count", "50"], &p2);
    let (_, _, _) = demo(&["--seed", "8", "--count", "50"], &p3);
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
fn corrupted_frames_are_dropped_by_fcs_and_counted() {
    let pcap = tmp("corrupt.pcap");
    let (code, out, _) = demo(
        &[
            "--count",
            "5",
            "--loss",
            "0",
            "--duplicate",
            "0",
            "--reorder",
            "0",
            "--corrupt",
            "1",
        ],
        &pcap,
    );
    assert_eq!(code, 0);
    assert!(
        out.contains("A: 5 echo requests sent, 0 answered, 5 unanswered"),
        "{out}"
    );
    assert!(
        out.contains("B: tx 0 frames, rx 5 frames, rx_crc_errors 5"),
        "{out}"
    );
    assert!(out.contains("corrupted 5"), "{out}");
}

#[test]
fn a_perfect_link_answers_everything() {
    let pcap = tmp("perfect.pcap");
    let args = [
        "--count",
        "10",
        "--loss",
        "0",
        "--duplicate",
        "0",
        "--reorder",
        "0",
        "--corrupt",
        "0",
    ];
    let (code, out, _) = demo(&args, &pcap);
    assert_eq!(code, 0);
    assert!(
        out.contains(
            "A: 10 echo requests sent, 10 answered, 0 unanswered (0% loss), 0 duplicate replies"
        ),
        "{out}"
    );
    // 5 ms each way plus 102 bytes at 10 Mbit/s (81.6 us) each way.
    assert!(
        out.contains("rtt min/avg/max = 10.163/10.163/10.163 ms"),
        "{out}"
    );
    assert!(out.contains("drops by reason: none"), "{out}");
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
    let (code, _, err) = demo(&["--count", "0"], &pcap);
    assert_eq!(code, 2);
    assert!(err.contains("--count"), "{err}");
    let (code, _, err) = demo(&["--pcap-nonsense"], &pcap);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = demo(&[], &PathBuf::from("/nonexistent-dir/x.pcap"));
    assert_eq!(code, 1);
    assert!(err.contains("cannot write"), "{err}");
}
