//! Executing a planned socket call on the host: script descriptors mapped
//! to the host's, default addresses filled in, the script's non-blocking
//! descriptors tracked, `poll` timeouts waited out in virtual time, and the
//! result (value, errno, out-parameters) checked.

use super::consts;
use super::engine::{fail, unsupported, Engine, Stop};
use super::host::EpollEvent;
use super::host::{OptValue, PollFd, SysError, SysResult};
use super::plan::{Addr, Call, CallKind, Cmsg, CmsgData, EpollEv, GetExpect};
use std::net::{Ipv4Addr, SocketAddrV4};

const O_NONBLOCK: i64 = 0x800;
const F_SETFL: i32 = 4;
const MSG_FASTOPEN: i32 = 0x2000_0000;
const MSG_DONTWAIT: i32 = 0x40;

fn expected_text(c: &Call) -> String {
    match &c.errno {
        Some(e) => format!("{} = {} {e}", c.name, c.ret),
        None => format!("{} = {}", c.name, c.ret),
    }
}

impl Engine<'_> {
    /// The host descriptor for a script descriptor (unknown ones pass
    /// through unchanged, so bad-descriptor tests reach the host).
    fn hfd(&self, fd: i64) -> i32 {
        match self.fds.get(&fd) {
            Some(h) => *h,
            None => i32::try_from(fd).unwrap_or(-1),
        }
    }

    fn map_ip(&self, ip: Ipv4Addr) -> Ipv4Addr {
        if ip == self.script_local {
            self.opts.local_ip
        } else if ip == self.script_remote {
            self.opts.remote_ip
        } else {
            ip
        }
    }

    fn local_addr(&self, a: Addr) -> SocketAddrV4 {
        match a {
            Addr::Default => SocketAddrV4::new(self.opts.local_ip, self.opts.bind_port),
            Addr::Explicit(ip, port) => SocketAddrV4::new(self.map_ip(ip), port),
        }
    }

    fn remote_addr(&self, a: Addr) -> SocketAddrV4 {
        match a {
            Addr::Default => SocketAddrV4::new(self.opts.remote_ip, self.opts.connect_port),
            Addr::Explicit(ip, port) => SocketAddrV4::new(self.map_ip(ip), port),
        }
    }

    /// Runs a call (`first`: not a retry of a blocked one). `Ok(None)`: it
    /// would block; `Ok(Some(()))`: it returned as the script expects.
    pub(super) fn exec_call(
        &mut self,
        line: u32,
        c: &Call,
        start_ns: u64,
        first: bool,
    ) -> Result<Option<()>, Stop> {
        let fd = c.kind.fd().map(|f| self.hfd(f));
        let res: SysResult = match &c.kind {
            CallKind::Send { len, flags, to, .. } if c.null_buf => {
                let to = to.map(|a| self.remote_addr(a));
                self.host.send_null_buf(fd.unwrap_or(-1), *len, *flags, to)
            }
            CallKind::Recv { len, flags, .. } if c.null_buf => {
                self.host.recv_null_buf(fd.unwrap_or(-1), *len, *flags)
            }
            CallKind::Socket {
                domain,
                ty,
                protocol,
            } => self.host.socket(*domain, *ty, *protocol),
            CallKind::Bind { addr, .. } => {
                let a = self.local_addr(*addr);
                let r = self.host.bind(fd.unwrap_or(-1), a);
                if r.is_ok() {
                    self.bound.insert(fd.unwrap_or(-1), a.port());
                }
                r
            }
            CallKind::Listen { backlog, .. } => {
                let f = fd.unwrap_or(-1);
                let r = self.host.listen(f, *backlog);
                if r.is_ok() {
                    self.listen_port = Some(*self.bound.get(&f).unwrap_or(&self.opts.bind_port));
                }
                r
            }
            CallKind::Accept { .. } => self.host.accept(fd.unwrap_or(-1)),
            CallKind::Connect { addr, .. } => {
                let a = self.remote_addr(*addr);
                let f = fd.unwrap_or(-1);
                if first {
                    self.mapper
                        .add_active(self.bound.get(&f).copied(), a.port());
                    self.last_sock = Some(f);
                }
                self.host.connect(f, a)
            }
            CallKind::Recv {
                len,
                flags,
                msg: None,
                ..
            } => self.host.recv(fd.unwrap_or(-1), *len, *flags),
            CallKind::Recv {
                len,
                flags,
                msg: Some(want),
                ..
            } => match self.host.recvmsg(fd.unwrap_or(-1), *len, *flags) {
                Ok(got) => {
                    self.collect();
                    if got.flags != want.flags {
                        return Err(fail(
                            line,
                            format!("msg_flags {:#x}", want.flags),
                            format!("{:#x}", got.flags),
                        ));
                    }
                    if let Some(c) = &want.control {
                        // Timestamps back on the script's clock.
                        let got_c: Vec<Cmsg> =
                            got.control.iter().map(|m| self.script_cmsg(*m)).collect();
                        if !cmsgs_match(c, &got_c, self.tol_ns) {
                            return Err(fail(
                                line,
                                format!("msg_control {}", cmsgs_text(c)),
                                cmsgs_text(&got_c),
                            ));
                        }
                    }
                    Ok(got.len)
                }
                Err(e) => Err(e),
            },
            CallKind::Send {
                len,
                flags,
                to,
                iov,
                ..
            } => {
                let f = fd.unwrap_or(-1);
                let to = to.map(|a| self.remote_addr(a));
                if first && flags & MSG_FASTOPEN != 0 {
                    // A Fast Open sendto connects, as connect() does.
                    if let Some(a) = to.filter(|a| a.port() != 0) {
                        let known = self.last_sock == Some(f)
                            && self.mapper.cur.is_some_and(|i| {
                                self.mapper.conns.get(i).is_some_and(|c| c.active)
                            });
                        if !known {
                            self.mapper
                                .add_active(self.bound.get(&f).copied(), a.port());
                        }
                        self.last_sock = Some(f);
                    }
                }
                match iov {
                    Some(iov) => self.host.sendmsg(f, iov, *flags, to),
                    None => self.host.send(f, *len, *flags, to),
                }
            }
            CallKind::Shutdown { how, .. } => self.host.shutdown(fd.unwrap_or(-1), *how),
            CallKind::Close { fd: sfd } => {
                let r = self.host.close(fd.unwrap_or(-1));
                if r.is_ok() {
                    self.fds.remove(sfd);
                }
                r
            }
            CallKind::SetSockOpt {
                level, opt, value, ..
            } => self.host.setsockopt(fd.unwrap_or(-1), *level, *opt, value),
            CallKind::GetSockOpt {
                level, opt, expect, ..
            } => {
                return self
                    .getsockopt(line, c, fd.unwrap_or(-1), *level, *opt, expect)
                    .map(Some)
            }
            CallKind::Fcntl { cmd, arg, .. } => {
                let f = fd.unwrap_or(-1);
                let r = self.host.fcntl(f, *cmd, *arg);
                if r.is_ok() && *cmd == F_SETFL {
                    if arg & O_NONBLOCK != 0 {
                        self.nonblock.insert(f);
                    } else {
                        self.nonblock.remove(&f);
                    }
                }
                r
            }
            CallKind::Poll { fds, timeout_ms } => {
                return self.poll(line, c, fds, *timeout_ms, start_ns);
            }
            CallKind::EpollCreate { size } => self.host.epoll_create(*size),
            CallKind::Open { path, flags } => self.host.open(path, *flags),
            CallKind::Sendfile {
                in_fd,
                offset,
                count,
                ..
            } => {
                // The script's offset variable (packetdrill does not look
                // at it afterwards).
                let mut off = *offset;
                let in_fd = self.hfd(*in_fd);
                self.host
                    .sendfile(fd.unwrap_or(-1), in_fd, off.as_mut(), *count)
            }
            CallKind::Pipe { fds } => match self.host.pipe() {
                Ok((r, w)) => {
                    self.fds.insert(fds[0], r);
                    self.fds.insert(fds[1], w);
                    Ok(0)
                }
                Err(e) => Err(e),
            },
            CallKind::Splice {
                off_in,
                fd_out,
                off_out,
                len,
                flags,
                ..
            } => {
                let (mut oi, mut oo) = (*off_in, *off_out);
                let call = super::host::SpliceCall {
                    fd_in: fd.unwrap_or(-1),
                    off_in: oi.as_mut(),
                    fd_out: self.hfd(*fd_out),
                    off_out: oo.as_mut(),
                    len: *len,
                    flags: *flags,
                };
                self.host.splice(call)
            }
            CallKind::EpollCtl {
                op,
                fd: target,
                event,
                ..
            } => {
                let t = self.hfd(*target);
                let ev = event.map(|e| EpollEvent {
                    events: e.events,
                    data: e.data,
                });
                self.host.epoll_ctl(fd.unwrap_or(-1), *op, t, ev)
            }
            CallKind::EpollWait {
                expect,
                maxevents,
                timeout_ms,
                ..
            } => {
                let epfd = fd.unwrap_or(-1);
                return self.epoll_wait(line, c, epfd, expect, *maxevents, *timeout_ms, start_ns);
            }
            CallKind::Ioctl {
                request, expect, ..
            } => match self.host.ioctl(fd.unwrap_or(-1), *request) {
                Ok(v) => {
                    if let Some(e) = expect {
                        if *e != v {
                            let req = consts::name("SIOC", *request as i64).unwrap_or("ioctl");
                            return Err(fail(line, format!("{req} value {e}"), v.to_string()));
                        }
                    }
                    Ok(0)
                }
                Err(e) => Err(e),
            },
        };
        self.collect();
        let res = match res {
            Err(SysError::WouldBlock) => {
                let dontwait = matches!(&c.kind, CallKind::Recv { flags, .. } | CallKind::Send { flags, .. } if flags & MSG_DONTWAIT != 0);
                if fd.is_some_and(|f| self.nonblock.contains(&f)) || dontwait {
                    // The host should have said EAGAIN; the script cannot block.
                    Err(SysError::Errno(super::host::Errno::EAGAIN))
                } else {
                    return Ok(None);
                }
            }
            r => r,
        };
        self.check_result(line, c, res)?;
        Ok(Some(()))
    }

    fn check_result(&mut self, line: u32, c: &Call, res: SysResult) -> Result<(), Stop> {
        match res {
            Err(SysError::Unsupported(r)) => Err(unsupported(line, format!("{}: {r}", c.name))),
            Err(SysError::WouldBlock) => Err(fail(line, expected_text(c), "would block")),
            Err(SysError::Errno(e)) => {
                let ok = c.ret == -1 && c.errno.as_deref().is_none_or(|n| n == e.name());
                if ok {
                    Ok(())
                } else {
                    Err(fail(line, expected_text(c), format!("-1 {e}")))
                }
            }
            Ok(v) => {
                let returns_fd = matches!(
                    c.kind,
                    CallKind::Socket { .. }
                        | CallKind::Accept { .. }
                        | CallKind::EpollCreate { .. }
                        | CallKind::Open { .. }
                );
                if returns_fd && c.ret >= 0 {
                    let h = i32::try_from(v).unwrap_or(-1);
                    self.fds.insert(c.ret, h);
                    match c.kind {
                        CallKind::Socket { ty, .. } => {
                            if i64::from(ty) & O_NONBLOCK != 0 {
                                self.nonblock.insert(h);
                            }
                            // The new socket is under test: packetdrill
                            // ignores the older ones' packets from now on.
                            self.mapper.stale_before = self.mapper.conns.len();
                        }
                        CallKind::EpollCreate { .. } | CallKind::Open { .. } => {}
                        _ => self.last_sock = Some(h),
                    }
                    return Ok(());
                }
                if let Some(f) = c.kind.fd() {
                    let not_a_socket = matches!(
                        c.kind,
                        CallKind::Close { .. }
                            | CallKind::EpollCtl { .. }
                            | CallKind::EpollWait { .. }
                    );
                    if !not_a_socket {
                        let h = self.hfd(f);
                        if matches!(c.kind, CallKind::Recv { .. } | CallKind::Send { .. })
                            || self.last_sock.is_none()
                        {
                            self.last_sock = Some(h);
                        }
                    }
                }
                if v == c.ret {
                    Ok(())
                } else {
                    Err(fail(line, expected_text(c), v.to_string()))
                }
            }
        }
    }

    fn getsockopt(
        &mut self,
        line: u32,
        c: &Call,
        fd: i32,
        level: i32,
        opt: i32,
        expect: &GetExpect,
    ) -> Result<(), Stop> {
        let out = if let GetExpect::TcpInfo(fields) = expect {
            match self.host.tcp_info(fd) {
                Ok(info) => {
                    for (name, want) in fields {
                        let got = info
                            .get(name)
                            .ok_or_else(|| unsupported(line, format!("TCP_INFO field {name}")))?;
                        if got as i64 != *want {
                            return Err(fail(line, format!("{name} = {want}"), got.to_string()));
                        }
                    }
                    Ok(0)
                }
                Err(e) => Err(e),
            }
        } else {
            match self.host.getsockopt(fd, level, opt) {
                Ok(v) => {
                    if let GetExpect::Value(want) = expect {
                        let same = match (want, &v) {
                            (OptValue::Str(a), OptValue::Str(b)) => {
                                a.trim_matches('"') == b.trim_matches('"')
                            }
                            (a, b) => a == b,
                        };
                        if !same {
                            let name = consts::name("SO_", opt.into())
                                .filter(|_| level == 1)
                                .or_else(|| consts::name("TCP_", opt.into()).filter(|_| level == 6))
                                .unwrap_or("option");
                            return Err(fail(line, format!("{name} = {want:?}"), format!("{v:?}")));
                        }
                    }
                    Ok(0)
                }
                Err(e) => Err(e),
            }
        };
        self.collect();
        let out = match out {
            Err(SysError::WouldBlock) => Err(SysError::Errno(super::host::Errno::EAGAIN)),
            r => r,
        };
        self.check_result(line, c, out)
    }

    /// `epoll_wait`: waits (in virtual time, up to the timeout) for an
    /// event, then checks the events against the script's.
    #[allow(clippy::too_many_arguments)]
    fn epoll_wait(
        &mut self,
        line: u32,
        c: &Call,
        epfd: i32,
        expect: &[EpollEv],
        maxevents: i32,
        timeout_ms: i64,
        start_ns: u64,
    ) -> Result<Option<()>, Stop> {
        let res = self.host.epoll_wait(epfd, maxevents);
        self.collect();
        let events = match res {
            Ok(ev) => ev,
            Err(e) => {
                self.check_result(line, c, Err(e))?;
                return Ok(Some(()));
            }
        };
        let timed_out = timeout_ms >= 0
            && self.now() >= start_ns.saturating_add((timeout_ms as u64).saturating_mul(1_000_000));
        if events.is_empty() && !timed_out {
            return Ok(None);
        }
        if !events.is_empty() {
            for (i, (want, got)) in expect.iter().zip(events.iter()).enumerate() {
                if want.events != got.events || want.data != got.data {
                    return Err(fail(
                        line,
                        format!(
                            "epoll event {i} {{events={:#x}, data={}}}",
                            want.events, want.data
                        ),
                        format!("{{events={:#x}, data={}}}", got.events, got.data),
                    ));
                }
            }
        }
        self.check_result(line, c, Ok(events.len() as i64))?;
        Ok(Some(()))
    }

    fn poll(
        &mut self,
        line: u32,
        c: &Call,
        fds: &[(i64, i16, Option<i16>)],
        timeout_ms: i64,
        start_ns: u64,
    ) -> Result<Option<()>, Stop> {
        let pfds: Vec<PollFd> = fds
            .iter()
            .map(|(f, ev, _)| PollFd {
                fd: self.hfd(*f),
                events: *ev,
            })
            .collect();
        let res = self.host.poll(&pfds);
        self.collect();
        let revents = match res {
            Ok(r) => r,
            Err(SysError::WouldBlock) => vec![0; pfds.len()],
            Err(e) => {
                self.check_result(line, c, Err(e))?;
                return Ok(Some(()));
            }
        };
        let ready = revents.iter().filter(|r| **r != 0).count();
        let timed_out = timeout_ms >= 0
            && self.now() >= start_ns.saturating_add((timeout_ms as u64).saturating_mul(1_000_000));
        if ready == 0 && !timed_out {
            return Ok(None);
        }
        for ((f, _, want), got) in fds.iter().zip(revents.iter().chain(std::iter::repeat(&0))) {
            if let Some(w) = want {
                if w != got {
                    return Err(fail(
                        line,
                        format!("poll revents {w:#x} on fd {f}"),
                        format!("{got:#x}"),
                    ));
                }
            }
        }
        self.check_result(line, c, Ok(ready as i64))?;
        Ok(Some(()))
    }
}

impl Engine<'_> {
    /// A host's control message with its timestamp on the script's clock.
    fn script_cmsg(&self, mut m: Cmsg) -> Cmsg {
        if let CmsgData::Timestamping { sec, nsec } = m.data {
            let host = sec.saturating_mul(1_000_000_000).saturating_add(nsec);
            let rel = host.saturating_sub(i64::try_from(self.t0).unwrap_or(i64::MAX));
            m.data = CmsgData::Timestamping {
                sec: rel.div_euclid(1_000_000_000),
                nsec: rel.rem_euclid(1_000_000_000),
            };
        }
        m
    }
}

/// Whether the control messages are the expected ones: equal, except that
/// a timestamp matches within the tolerance, and an expected 0 matches any
/// (packetdrill's `scm_timestamping_expect_eq`).
fn cmsgs_match(want: &[Cmsg], got: &[Cmsg], tol_ns: u64) -> bool {
    want.len() == got.len()
        && want.iter().zip(got).all(|(w, g)| match (w.data, g.data) {
            (
                CmsgData::Timestamping { sec: ws, nsec: wn },
                CmsgData::Timestamping { sec: gs, nsec: gn },
            ) => {
                let want_ns = i128::from(ws) * 1_000_000_000 + i128::from(wn);
                let got_ns = i128::from(gs) * 1_000_000_000 + i128::from(gn);
                w.level == g.level
                    && w.ty == g.ty
                    && (want_ns == 0 || (want_ns - got_ns).unsigned_abs() <= u128::from(tol_ns))
            }
            _ => w == g,
        })
}

/// Control messages as a script writes them.
fn cmsgs_text(c: &[Cmsg]) -> String {
    let items: Vec<String> = c
        .iter()
        .map(|m| {
            let data = match m.data {
                CmsgData::Int(v) => v.to_string(),
                CmsgData::Timestamping { sec, nsec } => {
                    format!("{{scm_sec={sec}, scm_nsec={nsec}}}")
                }
                CmsgData::ExtErr(e) => format!(
                    "{{ee_errno={}, ee_origin={}, ee_type={}, ee_code={}, ee_info={}, ee_data={}}}",
                    e.errno, e.origin, e.ty, e.code, e.info, e.data
                ),
            };
            format!(
                "{{cmsg_level={}, cmsg_type={}, cmsg_data={data}}}",
                m.level, m.ty
            )
        })
        .collect();
    format!("[{}]", items.join(", "))
}
