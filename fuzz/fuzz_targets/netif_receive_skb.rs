//! Fuzz target: whole frames into a host's NIC and up through
//! `netif_receive_skb` (DESIGN.md §8). The host has a promiscuous NIC with
//! VLAN stripping, a VLAN device, a veth pair, taps (one capturing to pcap),
//! and tc ingress filters that match every way and redirect/mirror. Input:
//! a sequence of frames, each prefixed by a length byte; each gets a valid
//! FCS appended so it reaches the stack. Nothing may panic, and every frame
//! must be accounted for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netpath::capture::Capture;
use netpath::dev::nic::NicConfig;
use netpath::dev::taps::{Tap, TapSink};
use netpath::sched::tc::{TcAction, TcDirection, TcFilter, TcMatch};
use netpath::stack::Stack;
use netpath::time::Instant;
use netpath_wire::ethernet::{fcs, EthernetAddress};

fuzz_target!(|data: &[u8]| {
    let mut s = Stack::new();
    let cfg = NicConfig {
        vlan_rx_offload: data.first().is_some_and(|b| b & 1 == 1),
        ..NicConfig::default()
    };
    let nic = s
        .add_nic("eth0", EthernetAddress([2, 0, 0, 0, 0, 1]), cfg)
        .unwrap();
    s.set_up(nic, true).unwrap();
    s.set_promisc(nic, true).unwrap();
    let v = s.add_vlan("eth0.10", nic, 10).unwrap();
    s.set_up(v, true).unwrap();
    let (a, b) = s
        .add_veth(
            "va",
            EthernetAddress([2, 0, 0, 0, 0, 2]),
            "vb",
            EthernetAddress([2, 0, 0, 0, 0, 3]),
        )
        .unwrap();
    s.set_up(a, true).unwrap();
    s.set_up(b, true).unwrap();
    // A UDP socket so datagrams are queued (and the buffer bound hit).
    let us = s.udp_socket();
    s.udp_bind(us, core::net::Ipv4Addr::UNSPECIFIED, 53).unwrap();
    s.udp_set_rcvbuf(us, 4096).unwrap();
    s.add_tap(Tap::all(
        None,
        TapSink::Capture(Capture::pcap(Vec::new()).unwrap()),
    ));
    s.add_tap(Tap::protocol(None, 0x0800, TapSink::queue(4)));
    let matches = vec![
        TcMatch::U32 {
            offset: -14,
            value: 0,
            mask: 0,
        },
        TcMatch::Ipv4Dst {
            addr: core::net::Ipv4Addr::new(192, 0, 2, 0),
            prefix_len: 24,
        },
        TcMatch::DstPort(80),
    ];
    s.tc_add_filter(
        nic,
        TcDirection::Ingress,
        TcFilter {
            pref: 1,
            matches,
            actions: vec![
                TcAction::Mirror {
                    dev: a,
                    dir: TcDirection::Egress,
                },
                TcAction::Redirect {
                    dev: v,
                    dir: TcDirection::Ingress,
                },
            ],
        },
    )
    .unwrap();
    s.tc_add_filter(
        nic,
        TcDirection::Ingress,
        TcFilter {
            pref: 2,
            matches: vec![TcMatch::VlanId(10)],
            actions: vec![TcAction::SetMark(1), TcAction::Pass],
        },
    )
    .unwrap();

    let mut rest = data.get(1..).unwrap_or(&[]);
    let mut t = 0;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        let (frame, after) = tail.split_at(n);
        rest = after;
        let mut f = frame.to_vec();
        f.extend_from_slice(&[0; 4]);
        let _ = fcs::append(&mut f, n);
        t += 1000;
        let _ = s.nic_receive_bytes(Instant::from_nanos(t), nic, &f);
        s.poll(Instant::from_nanos(t));
    }
    // Let every timer run out (ARP probes, reassembly timeouts).
    for _ in 0..64 {
        match s.poll(Instant::from_nanos(t)) {
            Some(next) => t = next.as_nanos().max(t + 1),
            None => break,
        }
    }
    // Nothing leaks: the posted rx buffers, the protocol tap's queue (at
    // most 4) and what waits on the NIC's tx side are all that may hold
    // buffers once the timers have run out.
    let ring = s.dev(nic).unwrap().nic().unwrap().config().rx_ring;
    let tx = s.dev(nic).unwrap().nic().unwrap().tx_in_use()
        + s.dev(nic).unwrap().nic().unwrap().wire_pending();
    let in_use = s.pool().stats().in_use as usize;
    let queued = s.udp_queued(us).map_or(0, |(n, _)| n);
    assert!(in_use <= ring + 4 + tx + queued, "{in_use} buffers in use");
});
