#[path = "../benches/common/mod.rs"]
mod common;
use common::{link, netpath_host};
use netpath::sim::blocking::{with_stack, Blocking};
use netpath::sim::{PortId, Sim};
use netpath::sock::Errno;
use netpath::tcp::SendFlags;
use netpath::time::Duration;
use std::net::Ipv4Addr;

fn main() {
    let bytes = 8usize << 20;
    let mut sim = Sim::new(1);
    let client_ip = Ipv4Addr::new(192, 0, 2, 1);
    let server_ip = Ipv4Addr::new(192, 0, 2, 2);
    let client = netpath_host(&mut sim, 1, client_ip);
    let server = netpath_host(&mut sim, 2, server_ip);
    let lk = sim
        .add_link(link(), &[(client, PortId(0)), (server, PortId(0))])
        .unwrap();
    if let Ok(path) = std::env::var("PCAP") {
        let f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
        sim.capture(
            lk,
            (client, PortId(0)),
            netpath::capture::Capture::pcap(f).unwrap(),
        )
        .unwrap();
    }
    let bs = Blocking::new(server);
    let bc = Blocking::new(client);
    let l = bs
        .listen(&mut sim, Ipv4Addr::UNSPECIFIED, 5001, 16)
        .unwrap();
    let tx = bc.socket(&mut sim);
    bc.connect(&mut sim, tx, server_ip, 5001).unwrap();
    let (rx, _) = bs.accept(&mut sim, l).unwrap();
    let chunk = vec![0x5a_u8; 64 * 1024];
    let mut buf = vec![0_u8; 64 * 1024];
    let (mut sent, mut got) = (0, 0);
    let mut closed = false;
    let mut eof = false;
    let mut it = 0;
    let verbose = std::env::var("V").is_ok();
    while !eof {
        let s0 = sent;
        while sent < bytes {
            let n = chunk.len().min(bytes - sent);
            match with_stack(&mut sim, client, |s, now| {
                s.tcp_send(now, tx, &chunk[..n], SendFlags::default())
            }) {
                Ok(q) => sent += q,
                Err(Errno::EAGAIN) => break,
                Err(e) => panic!("{e:?}"),
            }
        }
        if sent == bytes && !closed {
            with_stack(&mut sim, client, |s, now| s.tcp_close(now, tx)).unwrap();
            closed = true;
        }
        let ev0 = sim.events_run();
        sim.run_for(Duration::from_micros(20));
        let ev = sim.events_run() - ev0;
        let g0 = got;
        loop {
            match with_stack(&mut sim, server, |s, now| s.tcp_recv(now, rx, &mut buf)) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => got += n,
                Err(Errno::EAGAIN) => break,
                Err(e) => panic!("{e:?}"),
            }
        }
        if verbose || it % 100 == 0 {
            let ci = with_stack(&mut sim, client, |s, _| s.tcp_info(tx)).unwrap();
            let si = with_stack(&mut sim, server, |s, _| s.tcp_info(rx)).unwrap();
            println!("it {it} t {:?} queued {} got {} ev {ev} cwnd {} unacked {} snd_wnd {} notsent {} | srv rcv_wnd {} rcv_space {} ssthresh {}",
                sim.now(), sent - s0, got - g0, ci.snd_cwnd, ci.unacked, ci.snd_wnd, ci.notsent_bytes, si.rcv_wnd, si.rcv_space, ci.snd_ssthresh);
        }
        it += 1;
    }
    println!("iterations {it} events {}", sim.events_run());
    for (n, h) in [("client", client), ("server", server)] {
        with_stack(&mut sim, h, |s, _| {
            println!("{n} drops {:?}", s.drops());
            println!(
                "{n} ext {:?}",
                s.tcp_ext_mib()
                    .fields()
                    .into_iter()
                    .filter(|x| x.1 > 0)
                    .collect::<Vec<_>>()
            );
            println!("{n} mib {:?}", s.tcp_mib());
        });
    }
    println!("sim drops {:?}", sim.drops());
}
