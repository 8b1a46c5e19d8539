//! `netpath pkt` end to end: per-script lines, folder summaries, JSON, the
//! Markdown report, and the exit status (0 pass, 1 fail, 2 error).

use std::path::{Path, PathBuf};
use std::process::Command;

const PASSIVE_OPEN: &str = "\
0   socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0  setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0  bind(3, ..., ...) = 0
+0  listen(3, 1) = 0
+0  < S 0:0(0) win 32792 <mss 1000,nop,nop,sackOK,nop,wscale 7>
+0  > S. 0:0(0) ack 1 <...>
+.1 < . 1:1(0) ack 1 win 257
+0  accept(3, ..., ...) = 4
";

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("netpath-pkt-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(d: &Path, rel: &str, text: &str) {
    let p = d.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn pkt(args: &[&str], paths: &[&Path]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_netpath"))
        .arg("pkt")
        .args(args)
        .args(paths)
        .output()
        .expect("run netpath");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn pass_fail_and_error() {
    let d = dir("mixed");
    write(&d, "basic/open.pkt", PASSIVE_OPEN);
    let (code, out) = pkt(&[], &[&d]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("PASS        basic/open.pkt"), "{out}");
    assert!(out.contains("basic: 1 scripts, 1 pass"), "{out}");

    let wrong = PASSIVE_OPEN.replace(
        "accept(3, ..., ...) = 4",
        "accept(3, ..., ...) = 4\n+0 > F. 1:1(0) ack 1",
    );
    write(&d, "basic/wrong.pkt", &wrong);
    let (code, out) = pkt(&[], &[&d]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL        basic/wrong.pkt: fail at line 9"),
        "{out}"
    );

    write(&d, "basic/broken.pkt", "0 socket(\n");
    let (code, out) = pkt(&["--json"], &[&d]);
    assert_eq!(code, 2, "{out}");
    assert!(out.starts_with("{\"results\":["), "{out}");
    assert!(out.contains("\"exit_status\":2"), "{out}");

    let (_, md) = pkt(&["--markdown"], &[&d]);
    assert!(md.contains("| basic | 3 | 1 | 1 | 1 | 0 |"), "{md}");
    assert!(md.contains("`basic/wrong.pkt` line 9"), "{md}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn missing_path_exits_2() {
    let (code, _) = pkt(&[], &[Path::new("/nonexistent/netpath-pkt")]);
    assert_eq!(code, 2);
}
