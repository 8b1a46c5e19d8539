mod topo;
use netpath::sim::blocking::Blocking;
use netpath::sim::LinkConfig;
use topo::*;

#[test]
fn smoke() {
    let mut t = Topo::new(1);
    let a = t.host(&["192.0.2.1/24"]);
    let b = t.host(&["192.0.2.2/24"]);
    t.link(&a, 0, &b, 0, LinkConfig::default());
    let ba = Blocking::new(a.node);
    let bb = Blocking::new(b.node);
    let l = bb.listen(&mut t.sim, ip("0.0.0.0"), 80, 16).unwrap();
    let c = ba.socket(&mut t.sim);
    ba.connect(&mut t.sim, c, ip("192.0.2.2"), 80).unwrap();
    let (s, peer) = bb.accept(&mut t.sim, l).unwrap();
    println!("peer {peer:?}");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
    ba.write_all(&mut t.sim, c, &data).unwrap();
    ba.close(&mut t.sim, c).unwrap();
    let mut out = Vec::new();
    bb.read_to_end(&mut t.sim, s, &mut out).unwrap();
    assert_eq!(out.len(), data.len());
    assert!(out == data);
    println!("{:?}", t.stack(&a).tcp_mib());
    println!("{:?}", t.stack(&b).tcp_mib());
}
