//! The parser never panics, on random and on mutated input, and whatever it
//! accepts round-trips.

use netpath_pkt::parse;
use proptest::prelude::*;

/// Small valid scripts covering most constructs, used as mutation seeds.
const SEEDS: &[&str] = &[
    "--tolerance_usecs=10000\n`../common/defaults.sh`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n",
    "+0 bind(3, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr(\"1.2.3.4\")}, 16) = 0\n",
    "+.1~+.2 > S. 0:0(0) ack 1 <mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 8,sack 1:2 3:4,FO ab>\n",
    "+0...0.5 poll([{fd=3, events=POLLIN}], 1, 0) = -1 EAGAIN (Try (again))\n",
    "* < [ect0] icmp unreachable frag_needed mtu 1200 [0:10(10)]\n",
    "+0 %{ assert tcpi_rto == 300000 and x < 2, 'r=%d' % tcpi_rto }%\n/* c */ // d\n",
];

fn check(text: &str) {
    if let Ok(s) = parse(text) {
        let printed = s.to_string();
        let again = parse(&printed).unwrap_or_else(|e| panic!("{text:?} → {printed:?}: {e}"));
        assert!(again.eq_ignoring_lines(&s), "{text:?} → {printed:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_text_never_panics(s in "\\PC{0,200}") {
        check(&s);
    }

    #[test]
    fn script_alphabet_never_panics(s in "[ -~\\n]{0,200}") {
        check(&s);
    }

    #[test]
    fn mutated_seeds_never_panic(
        seed in 0..SEEDS.len(),
        edits in proptest::collection::vec((any::<usize>(), 0u8..3, "[ -~\\n]{0,3}"), 1..6),
    ) {
        let mut chars: Vec<char> = SEEDS[seed].chars().collect();
        for (at, op, ins) in edits {
            let i = if chars.is_empty() { 0 } else { at % (chars.len() + 1) };
            match op {
                0 => { if i < chars.len() { chars.remove(i); } }
                1 => { for (k, c) in ins.chars().enumerate() { chars.insert(i + k, c); } }
                _ => { chars.truncate(i); }
            }
        }
        check(&chars.into_iter().collect::<String>());
    }
}

#[test]
fn seeds_parse() {
    for s in SEEDS {
        parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        check(s);
    }
}
