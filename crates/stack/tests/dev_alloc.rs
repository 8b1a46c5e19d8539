//! The device layer allocates nothing per packet in steady state: frames
//! through NIC → NAPI → netif_receive_skb → a tap; out through
//! dev_queue_xmit → pfifo_fast → tx ring → completion; and across a bridge
//! (learn, FDB lookup, forward).

mod common;

use common::counted;
use netpath::dev::nic::NicConfig;
use netpath::dev::taps::{Tap, TapSink};
use netpath::stack::Stack;
use netpath::time::Instant;
use netpath_wire::ethernet::{fcs, EthernetAddress};

fn mac(n: u8) -> EthernetAddress {
    EthernetAddress([2, 0, 0, 0, 0, n])
}

fn wire_frame(dst: EthernetAddress, src: EthernetAddress, fill: u8) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(dst.as_bytes());
    f.extend_from_slice(src.as_bytes());
    f.extend_from_slice(&0x88b5u16.to_be_bytes());
    f.resize(200, fill);
    f.extend_from_slice(&[0; 4]);
    fcs::append(&mut f, 200).unwrap();
    f
}

#[test]
fn receive_and_transmit_allocate_nothing() {
    let mut s = Stack::new();
    let nic = s.add_nic("eth0", mac(1), NicConfig::default()).unwrap();
    s.set_up(nic, true).unwrap();
    let tap = s.add_tap(Tap::protocol(None, 0x88b5, TapSink::queue(64)));
    let pool = s.pool().clone();
    let rx = wire_frame(mac(1), mac(2), 1);
    let tx = &rx[..200];
    let mut sent = Vec::with_capacity(64);
    let mut t = 0u64;
    let mut round = |s: &mut Stack| {
        t += 1000;
        let now = Instant::from_nanos(t);
        for _ in 0..32 {
            let skb = pool.alloc_from(0, &rx).unwrap();
            s.nic_receive(now, nic, skb, true).unwrap();
            let mut out = pool.alloc_from(64, tx).unwrap();
            out.meta.egress_dev = Some(nic);
            s.dev_queue_xmit(now, out).unwrap();
        }
        s.poll(now);
        let mut n = 0;
        while let Some(k) = s.tap_recv(tap) {
            n += k.len();
        }
        s.nic_take_sent(nic, &mut sent);
        let out = sent.len();
        sent.clear();
        (n, out)
    };
    for _ in 0..50 {
        round(&mut s);
    }
    let (totals, allocs) = counted(|| {
        let mut acc = (0, 0);
        for _ in 0..300 {
            let (n, o) = round(&mut s);
            acc = (acc.0 + n, acc.1 + o);
        }
        acc
    });
    assert_eq!(
        totals,
        (300 * 32 * 186, 300 * 32),
        "every frame received and sent"
    );
    assert_eq!(allocs, 0, "steady state allocated");
    let d = s.dev(nic).unwrap();
    assert_eq!(d.stats().rx_crc_errors, 0);
    assert_eq!(d.stats().rx_packets, 350 * 32);
}

#[test]
fn bridge_forwarding_allocates_nothing() {
    let mut s = Stack::new();
    let br = s.add_bridge("br0", mac(10)).unwrap();
    let mut ports = Vec::new();
    for i in 0..3u8 {
        let n = s
            .add_nic(&format!("eth{i}"), mac(20 + i), NicConfig::default())
            .unwrap();
        s.set_up(n, true).unwrap();
        s.bridge_add_port(br, n).unwrap();
        ports.push(n);
    }
    s.set_up(br, true).unwrap();
    let pool = s.pool().clone();
    let ab = wire_frame(mac(2), mac(1), 3);
    let ba = wire_frame(mac(1), mac(2), 4);
    let mut sent = Vec::with_capacity(128);
    let mut t = 0u64;
    let mut round = |s: &mut Stack| {
        t += 1000;
        let now = Instant::from_nanos(t);
        for _ in 0..16 {
            s.nic_receive(now, ports[0], pool.alloc_from(0, &ab).unwrap(), false)
                .unwrap();
            s.nic_receive(now, ports[1], pool.alloc_from(0, &ba).unwrap(), false)
                .unwrap();
        }
        s.poll(now);
        let mut per_port = [0usize; 3];
        for (i, p) in ports.iter().enumerate() {
            s.nic_take_sent(*p, &mut sent);
            per_port[i] = sent.len();
            sent.clear();
        }
        per_port
    };
    for _ in 0..20 {
        round(&mut s);
    }
    let (per_port, allocs) = counted(|| round(&mut s));
    assert_eq!(
        per_port,
        [16, 16, 0],
        "known unicast forwarded port to port"
    );
    assert_eq!(allocs, 0, "steady state allocated");
}
