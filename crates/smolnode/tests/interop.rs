//! Interop: netpath's TCP against smoltcp 0.12 on a simulated link.
//!
//! Both directions (netpath client → smoltcp server, smoltcp client →
//! netpath server), 2 MiB one way, compared by length and FNV-1a hash,
//! then a clean close: FIN both ways, both ends CLOSED or TIME-WAIT, no
//! RST (on an impaired link a stale duplicate reaching the passive closer
//! after it freed the socket is rightly answered with one). Each runs on a
//! clean link and on an impaired one (1 % loss, 0.5 % duplication, 1 %
//! reordering); under impairment the netpath sender must count
//! retransmissions in `Tcp:` `RetransSegs`. Seeds are small and fixed;
//! virtual time is bounded. `NETPATH_INTEROP_PCAP=DIR` writes a pcap of
//! each test's link.

use core::net::Ipv4Addr;

use netpath::dev::nic::NicConfig;
use netpath::sim::blocking::{stack, with_stack, Blocking};
use netpath::sim::{LinkConfig, LinkId, NodeId, PortId, Sim, SimHost};
use netpath::sock::Errno;
use netpath::stack::Stack;
use netpath::tcp::{SendFlags, TcpMib, TcpState};
use netpath::time::Duration;
use netpath_smolnode::smoltcp::socket::tcp::State;
use netpath_smolnode::smoltcp::wire::Ipv4Address;
use netpath_smolnode::{with_smol, SmolConfig, SmolHost, PORT};
use netpath_wire::ethernet::EthernetAddress;

/// Bytes moved per test.
const BYTES: usize = 2 << 20;
/// TEST-NET-1 (RFC 5737).
const NP_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const SMOL_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const SERVER_PORT: u16 = 5001;
/// How far the world runs between two application steps.
const APP_STEP: Duration = Duration::from_micros(200);
/// Virtual time a transfer (with its close) may take.
const SIM_LIMIT: Duration = Duration::from_secs(120);

fn smol_addr(a: Ipv4Addr) -> Ipv4Address {
    let [a, b, c, d] = a.octets();
    Ipv4Address::new(a, b, c, d)
}

fn clean_link() -> LinkConfig {
    LinkConfig {
        latency: Duration::from_micros(50),
        ..LinkConfig::default()
    }
}

fn lossy_link() -> LinkConfig {
    LinkConfig {
        latency: Duration::from_micros(50),
        loss: 0.01,
        duplicate: 0.005,
        reorder: 0.01,
        reorder_delay: Duration::from_micros(300),
        ..LinkConfig::default()
    }
}

/// FNV-1a, 64 bits, streaming.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Seeded pseudo-random payload (xorshift64*), so a shifted or repeated
/// segment changes the hash.
fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

struct World {
    sim: Sim,
    np: NodeId,
    smol: NodeId,
    link: LinkId,
}

/// With `NETPATH_INTEROP_PCAP=DIR`, each test writes the netpath end of
/// its link to `DIR/<name>.pcap` (for `tcpdump -r`).
fn world(name: &str, seed: u64, cfg: LinkConfig) -> World {
    let mut sim = Sim::new(seed);
    let mut st = Stack::with_pool(sim.pool().clone());
    let nic = st
        .add_nic(
            "eth0",
            EthernetAddress([0x02, 0, 0, 0, 0, 0x01]),
            NicConfig::default(),
        )
        .unwrap();
    st.set_up(nic, true).unwrap();
    st.ip_addr_add(nic, NP_IP, 24).unwrap();
    let mut host = SimHost::new(st);
    host.cable(PortId(0), nic);
    let np = sim.add_node(Box::new(host));
    let smol = sim.add_node(Box::new(SmolHost::new(SmolConfig::new(
        [0x02, 0, 0, 0, 0, 0x02],
        smol_addr(SMOL_IP),
        24,
    ))));
    let link = sim.add_link(cfg, &[(np, PortId(0)), (smol, PORT)]).unwrap();
    if let Some(dir) = std::env::var_os("NETPATH_INTEROP_PCAP") {
        let path = std::path::Path::new(&dir).join(format!("{name}.pcap"));
        let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
        let cap = netpath::capture::Capture::pcap(file).unwrap();
        sim.capture(link, (np, PortId(0)), cap).unwrap();
    }
    World {
        sim,
        np,
        smol,
        link,
    }
}

fn print_counters(w: &World, what: &str) {
    let st = stack(&w.sim, w.np);
    println!("{what}: netpath {:?}", st.tcp_mib());
    let ext = st.tcp_ext_mib();
    let nonzero: Vec<_> = ext.fields().into_iter().filter(|(_, v)| *v != 0).collect();
    println!("{what}: netpath TcpExt {nonzero:?}");
    println!("{what}: link {:?}", w.sim.link_stats(w.link).unwrap());
    println!(
        "{what}: smoltcp {:?}",
        w.sim.node::<SmolHost>(w.smol).unwrap().stats()
    );
}

/// netpath connects to smoltcp and sends `BYTES`, then closes; smoltcp
/// reads to the end and closes. Returns netpath's `RetransSegs`.
fn netpath_to_smoltcp(name: &str, seed: u64, cfg: LinkConfig) -> TcpMib {
    let mut w = world(name, seed, cfg);
    let data = payload(seed, BYTES);
    let mut want = Fnv::new();
    want.update(&data);
    let limit = w.sim.now() + SIM_LIMIT;

    let server = with_smol(&mut w.sim, w.smol, |h| h.tcp_listen(SERVER_PORT)).unwrap();
    let b = Blocking::with_limit(w.np, Duration::from_secs(30));
    let c = b.socket(&mut w.sim);
    b.connect(&mut w.sim, c, SMOL_IP, SERVER_PORT).unwrap();
    assert_eq!(
        stack(&w.sim, w.np).tcp_state(c),
        Some(TcpState::Established)
    );

    let mut got = Fnv::new();
    let (mut sent, mut recvd) = (0usize, 0usize);
    let mut closed = false;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while sent < data.len() {
            match with_stack(&mut w.sim, w.np, |s, now| {
                s.tcp_send(now, c, &data[sent..], SendFlags::default())
            }) {
                Ok(n) => sent += n,
                Err(Errno::EAGAIN) => break,
                Err(e) => panic!("tcp_send: {e:?} after {sent} bytes"),
            }
        }
        if sent == data.len() && !closed {
            with_stack(&mut w.sim, w.np, |s, now| s.tcp_close(now, c)).unwrap();
            closed = true;
        }
        w.sim.run_for(APP_STEP);
        loop {
            let n = with_smol(&mut w.sim, w.smol, |h| h.recv(server, &mut buf));
            if n == 0 {
                break;
            }
            got.update(&buf[..n]);
            recvd += n;
        }
        let state = with_smol(&mut w.sim, w.smol, |h| h.state(server));
        if state == State::CloseWait && recvd == data.len() {
            break;
        }
        assert!(
            w.sim.now() < limit,
            "stuck: {recvd} of {} bytes received, smoltcp {state}",
            data.len()
        );
    }
    assert_eq!(recvd, data.len());
    assert_eq!(got.0, want.0, "payload hash differs");

    // smoltcp closes its side; netpath's orphan goes to TIME-WAIT.
    with_smol(&mut w.sim, w.smol, |h| h.close(server));
    loop {
        let s = with_smol(&mut w.sim, w.smol, |h| h.state(server));
        let n = stack(&w.sim, w.np).tcp_state(c);
        if s == State::Closed && matches!(n, Some(TcpState::TimeWait) | None) {
            break;
        }
        assert!(
            w.sim.now() < limit,
            "close stuck: smoltcp {s}, netpath {n:?}"
        );
        w.sim.run_for(APP_STEP);
    }
    let mib = *stack(&w.sim, w.np).tcp_mib();
    print_counters(&w, "netpath→smoltcp");
    assert_eq!(mib.out_rsts, 0, "no RST in a clean close");
    assert_eq!(mib.estab_resets, 0);
    assert_eq!(mib.curr_estab, 0);
    mib
}

/// smoltcp connects to netpath and sends `BYTES`, then closes; netpath
/// reads to end of stream and closes.
fn smoltcp_to_netpath(name: &str, seed: u64, cfg: LinkConfig) -> TcpMib {
    let mut w = world(name, seed, cfg);
    let data = payload(seed ^ 0xabcd, BYTES);
    let mut want = Fnv::new();
    want.update(&data);
    let limit = w.sim.now() + SIM_LIMIT;

    let b = Blocking::with_limit(w.np, Duration::from_secs(30));
    let l = b
        .listen(&mut w.sim, Ipv4Addr::UNSPECIFIED, SERVER_PORT, 16)
        .unwrap();
    let client = with_smol(&mut w.sim, w.smol, |h| {
        h.tcp_connect(smol_addr(NP_IP), SERVER_PORT, 0)
    })
    .unwrap();
    let (s, peer) = b.accept(&mut w.sim, l).unwrap();
    assert_eq!(peer.0, SMOL_IP);

    let mut got = Fnv::new();
    let (mut sent, mut recvd) = (0usize, 0usize);
    let mut closed = false;
    let mut buf = vec![0u8; 64 * 1024];
    let mut eof = false;
    while !eof {
        while sent < data.len() {
            let n = with_smol(&mut w.sim, w.smol, |h| h.send(client, &data[sent..]));
            if n == 0 {
                break;
            }
            sent += n;
        }
        if sent == data.len() && !closed {
            with_smol(&mut w.sim, w.smol, |h| h.close(client));
            closed = true;
        }
        w.sim.run_for(APP_STEP);
        loop {
            match with_stack(&mut w.sim, w.np, |st, now| st.tcp_recv(now, s, &mut buf)) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    got.update(&buf[..n]);
                    recvd += n;
                }
                Err(Errno::EAGAIN) => break,
                Err(e) => panic!("tcp_recv: {e:?} after {recvd} bytes"),
            }
        }
        assert!(
            w.sim.now() < limit,
            "stuck: {recvd} of {} bytes received, netpath {:?}",
            data.len(),
            stack(&w.sim, w.np).tcp_state(s)
        );
    }
    assert_eq!(recvd, data.len());
    assert_eq!(got.0, want.0, "payload hash differs");

    b.close(&mut w.sim, s).unwrap();
    b.close(&mut w.sim, l).unwrap();
    loop {
        let st = with_smol(&mut w.sim, w.smol, |h| h.state(client));
        let n = stack(&w.sim, w.np).tcp_state(s);
        if matches!(st, State::TimeWait | State::Closed)
            && matches!(n, Some(TcpState::Closed) | None)
        {
            break;
        }
        assert!(
            w.sim.now() < limit,
            "close stuck: smoltcp {st}, netpath {n:?}"
        );
        w.sim.run_for(APP_STEP);
    }
    let mib = *stack(&w.sim, w.np).tcp_mib();
    print_counters(&w, "smoltcp→netpath");
    // netpath, the passive closer, frees the socket once its FIN is
    // acknowledged (no TIME-WAIT on this side, as Linux); a duplicated or
    // delayed data segment arriving after that is answered with a RST, as
    // it should be. Only a perfect link guarantees none.
    if cfg.duplicate == 0.0 && cfg.reorder == 0.0 {
        assert_eq!(mib.out_rsts, 0, "no RST in a clean close");
    }
    assert_eq!(mib.estab_resets, 0);
    assert_eq!(mib.curr_estab, 0);
    mib
}

#[test]
fn netpath_client_to_smoltcp_server() {
    let mib = netpath_to_smoltcp("np_to_smol", 1, clean_link());
    assert_eq!(
        mib.retrans_segs, 0,
        "a perfect link needs no retransmission"
    );
    assert_eq!(mib.active_opens, 1);
}

#[test]
fn smoltcp_client_to_netpath_server() {
    let mib = smoltcp_to_netpath("smol_to_np", 2, clean_link());
    assert_eq!(mib.passive_opens, 1);
}

#[test]
fn netpath_client_to_smoltcp_server_lossy() {
    let mib = netpath_to_smoltcp("np_to_smol_lossy", 3, lossy_link());
    assert!(mib.retrans_segs > 0, "1 % loss must cost retransmissions");
}

#[test]
fn smoltcp_client_to_netpath_server_lossy() {
    let mib = smoltcp_to_netpath("smol_to_np_lossy", 4, lossy_link());
    assert_eq!(mib.passive_opens, 1);
}
