//! Pcap files netpath writes read back the same: with tshark or tcpdump when
//! either is installed (what they decode: addresses, ports, lengths,
//! nanosecond timestamps, good checksums), and always with the project's own
//! reader.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;

use netpath::capture::{Capture, PcapWriter};
use netpath::sim::{LinkConfig, Node, NodeCtx, PortId, Sim};
use netpath::skb::Skb;
use netpath::time::{Duration, Instant};
use netpath_wire::checksum::{self, Checksum};
use netpath_wire::pcap::PcapReader;

const MAC_A: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x0a];
const MAC_B: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x0b];
const IP_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const IP_B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);
const PAYLOAD: &[u8] = b"netpath pcap";

/// Ethernet + IPv4 + UDP (40000 → 7), every checksum right; 54 + 12 bytes.
fn udp_frame() -> Vec<u8> {
    let udp_len = 8 + PAYLOAD.len() as u16;
    let ip_len = 20 + udp_len;
    let mut f = Vec::new();
    f.extend_from_slice(&MAC_B);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&IP_A.octets());
    ip[16..20].copy_from_slice(&IP_B.octets());
    let c = checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    assert!(checksum::verify(&ip));
    f.extend_from_slice(&ip);
    let mut udp = Vec::new();
    udp.extend_from_slice(&40000u16.to_be_bytes());
    udp.extend_from_slice(&7u16.to_be_bytes());
    udp.extend_from_slice(&udp_len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(PAYLOAD);
    let mut sum = Checksum::pseudo_header_v4(IP_A, IP_B, 17, udp_len);
    sum.add_bytes(&udp);
    let c = match sum.finish() {
        0 => 0xffff,
        c => c,
    };
    udp[6..8].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&udp);
    f
}

/// A broadcast ARP request: who has IP_B, tell IP_A; padded to 60 bytes.
fn arp_frame() -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&0x0806u16.to_be_bytes());
    f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&IP_A.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&IP_B.octets());
    f.resize(60, 0);
    f
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("netpath-{}-{name}.pcap", std::process::id()))
}

fn on_path(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

enum Tool {
    Tshark,
    Tcpdump,
}

fn tool() -> Option<Tool> {
    if on_path("tshark") {
        Some(Tool::Tshark)
    } else if on_path("tcpdump") {
        Some(Tool::Tcpdump)
    } else {
        assert!(
            std::env::var("NETPATH_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "NETPATH_REQUIRE_TOOLS=1 but neither tshark nor tcpdump is on PATH"
        );
        println!("pcap_readback: skipped: neither tshark nor tcpdump on PATH");
        None
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// One line per packet, `|`-separated, the fields named in `FIELDS`.
const FIELDS: &[&str] = &[
    "frame.time_epoch",
    "frame.len",
    "frame.cap_len",
    "eth.src",
    "eth.dst",
    "ip.src",
    "ip.dst",
    "ip.len",
    "ip.checksum.status",
    "udp.srcport",
    "udp.dstport",
    "udp.length",
    "udp.checksum.status",
    "arp.opcode",
    "arp.src.proto_ipv4",
    "arp.dst.proto_ipv4",
];

fn tshark(path: &PathBuf) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(path)
        .args(["-T", "fields", "-E", "separator=|"]);
    cmd.args([
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
    ]);
    for f in FIELDS {
        cmd.args(["-e", f]);
    }
    run(&mut cmd)
        .lines()
        .map(|l| l.split('|').map(str::to_owned).collect())
        .collect()
}

fn tcpdump(path: &PathBuf) -> String {
    run(Command::new("tcpdump").arg("-r").arg(path).args([
        "-nn",
        "-vv",
        "-e",
        "-tt",
        "--time-stamp-precision=nano",
    ]))
}

/// A UDP frame whose payload lost a bit after the checksum was computed.
fn bad_udp_frame() -> Vec<u8> {
    let mut f = udp_frame();
    let last = f.len() - 1;
    f[last] ^= 0x01;
    f
}

const T_UDP: u64 = 1_700_000_000_123_456_789;
const T_ARP: u64 = 1_700_000_000_987_654_321;
const T_BAD: u64 = 1_700_000_001_000_000_001;

fn written(snaplen: u32) -> Vec<u8> {
    let mut w = PcapWriter::with_snaplen(Vec::new(), snaplen).unwrap();
    for (t, f) in [
        (T_UDP, udp_frame()),
        (T_ARP, arp_frame()),
        (T_BAD, bad_udp_frame()),
    ] {
        w.write_packet(Instant::from_nanos(t), &f).unwrap();
    }
    w.into_inner()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn external_decoder_reads_what_we_wrote() {
    let Some(tool) = tool() else { return };
    let path = temp_path("direct");
    std::fs::write(&path, written(262_144)).unwrap();
    match tool {
        Tool::Tshark => {
            let rows = tshark(&path);
            // ip.checksum.status / udp.checksum.status: 1 good, 0 bad.
            let udp = |t: &str, udp_ok: &str| {
                strings(&[
                    t,
                    "54",
                    "54",
                    "02:00:5e:00:00:0a",
                    "02:00:5e:00:00:0b",
                    "192.0.2.10",
                    "192.0.2.11",
                    "40",
                    "1",
                    "40000",
                    "7",
                    "20",
                    udp_ok,
                    "",
                    "",
                    "",
                ])
            };
            let arp = strings(&[
                "1700000000.987654321",
                "60",
                "60",
                "02:00:5e:00:00:0a",
                "ff:ff:ff:ff:ff:ff",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "1",
                "192.0.2.10",
                "192.0.2.11",
            ]);
            assert_eq!(
                rows,
                vec![
                    udp("1700000000.123456789", "1"),
                    arp,
                    udp("1700000001.000000001", "0")
                ]
            );
        }
        Tool::Tcpdump => {
            let out = tcpdump(&path);
            let lines: Vec<&str> = out.lines().collect();
            assert_eq!(lines.len(), 5, "{out}");
            assert!(lines[0].starts_with(
                "1700000000.123456789 02:00:5e:00:00:0a > 02:00:5e:00:00:0b, ethertype IPv4 (0x0800), length 54:"
            ), "{out}");
            assert!(lines[0].contains("proto UDP (17), length 40"), "{out}");
            assert!(!lines[0].contains("bad cksum"), "{out}");
            assert!(
                lines[1].contains("192.0.2.10.40000 > 192.0.2.11.7: [udp sum ok] UDP, length 12"),
                "{out}"
            );
            assert!(lines[2].starts_with("1700000000.987654321 02:00:5e:00:00:0a > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 60:"), "{out}");
            assert!(
                lines[2].contains("Request who-has 192.0.2.11 tell 192.0.2.10"),
                "{out}"
            );
            assert!(lines[3].starts_with("1700000001.000000001 "), "{out}");
            assert!(lines[4].contains("bad udp cksum"), "{out}");
        }
    }
    let _ = std::fs::remove_file(&path);
}

#[test]
fn own_reader_reads_back_records_and_snaplen() {
    let bytes = written(40);
    let r = PcapReader::new(&bytes).unwrap();
    assert!(r.is_nanosecond());
    assert!(!r.is_big_endian());
    assert_eq!((r.link_type(), r.snaplen(), r.version_minor()), (1, 40, 4));
    let recs: Vec<_> = r.map(Result::unwrap).collect();
    let full = [udp_frame(), arp_frame(), bad_udp_frame()];
    let times = [T_UDP, T_ARP, T_BAD];
    assert_eq!(recs.len(), 3);
    for ((rec, f), t) in recs.iter().zip(&full).zip(times) {
        assert_eq!(u64::from(rec.ts_sec), t / 1_000_000_000);
        assert_eq!(u64::from(rec.ts_frac), t % 1_000_000_000);
        assert_eq!(rec.orig_len as usize, f.len());
        assert_eq!(rec.data, &f[..40]);
    }
}

/// Sends the UDP frame, then the ARP request, when first polled.
struct Talker;

impl Node for Talker {
    fn receive(&mut self, _: Instant, _: PortId, _: Skb, _: bool, _: &mut NodeCtx<'_>) {}
    fn poll(&mut self, _: Instant, ctx: &mut NodeCtx<'_>) -> Option<Instant> {
        for f in [udp_frame(), arp_frame()] {
            let skb = ctx.pool().alloc_from(64, &f).unwrap();
            ctx.transmit(PortId(0), skb);
        }
        None
    }
}

#[test]
fn a_link_capture_reads_back_with_virtual_timestamps() {
    let mut sim = Sim::new(1);
    let a = sim.add_node(Box::new(Talker));
    let b = sim.add_node(Box::new(Talker));
    let cfg = LinkConfig {
        latency: Duration::from_nanos(1_500),
        bandwidth_bps: Some(1_000_000_000),
        ..LinkConfig::default()
    };
    let p = PortId(0);
    let l = sim.add_link(cfg, &[(a, p), (b, p)]).unwrap();
    let cap = sim
        .capture(l, (b, p), Capture::pcap(Vec::new()).unwrap())
        .unwrap();
    assert!(sim.run_until_idle(Instant::from_secs(1)));
    let bytes = sim
        .take_capture(cap)
        .unwrap()
        .into_writer::<Vec<u8>>()
        .unwrap()
        .into_inner();
    // At b: its own two frames leave at 0; a's arrive after serialisation
    // (8 ns a byte) and latency: UDP 54·8 + 1500, ARP queued behind it.
    let want = [
        (0, udp_frame()),
        (0, arp_frame()),
        (54 * 8 + 1_500, udp_frame()),
        ((54 + 60) * 8 + 1_500, arp_frame()),
    ];
    let got: Vec<(u64, Vec<u8>)> = PcapReader::new(&bytes)
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            (
                u64::from(r.ts_sec) * 1_000_000_000 + u64::from(r.ts_frac),
                r.data.to_vec(),
            )
        })
        .collect();
    assert_eq!(got, want.to_vec());

    let Some(tool) = tool() else { return };
    let path = temp_path("sim");
    std::fs::write(&path, &bytes).unwrap();
    match tool {
        Tool::Tshark => {
            let rows = tshark(&path);
            let summary: Vec<(&str, &str, &str)> = rows
                .iter()
                .map(|r| (r[0].as_str(), r[12].as_str(), r[13].as_str()))
                .collect();
            assert_eq!(
                summary,
                vec![
                    ("0.000000000", "1", ""),
                    ("0.000000000", "", "1"),
                    ("0.000001932", "1", ""),
                    ("0.000002412", "", "1"),
                ]
            );
        }
        Tool::Tcpdump => {
            let out = tcpdump(&path);
            let stamps: Vec<&str> = out
                .lines()
                .filter(|l| !l.starts_with(' '))
                .filter_map(|l| l.split(' ').next())
                .collect();
            assert_eq!(
                stamps,
                ["0.000000000", "0.000000000", "0.000001932", "0.000002412"],
                "{out}"
            );
            assert_eq!(out.matches("[udp sum ok]").count(), 2, "{out}");
        }
    }
    let _ = std::fs::remove_file(&path);
}
