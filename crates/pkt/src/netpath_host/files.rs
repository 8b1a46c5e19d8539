//! The host's files and pipes ([`crate::vfs`]) behind descriptors, and the
//! calls that move bytes between them and netpath's sockets: `open`
//! (`do_sys_open`, `O_RDONLY`), `close`, `read`/`write` of a pipe or a
//! file, `sendfile` (`do_sendfile` → `do_splice_direct` →
//! `splice_to_socket` → `tcp_sendmsg`) and `splice` (`do_splice`: a TCP
//! socket into a pipe is `tcp_splice_read`, a pipe into a socket
//! `splice_to_socket`, a file into a pipe `filemap_splice_read`).
//!
//! `sendfile` to a TCP socket is `tcp_sendmsg` with `MSG_SPLICE_PAGES`:
//! the same segments and PSH marks as a `write` of those bytes. Linux
//! sends each pipe-full (64 KiB) with `MSG_MORE` but the one that
//! completes the request, and a file shorter than the count is pushed at
//! its end (`tcp_splice_eof`), so the wire shows what one write of the
//! bytes sent shows; the host makes that one write.

use super::NetpathHost;
use crate::run::host::{Errno, SpliceCall, SysError, SysResult};
use crate::vfs::{OpenFile, Pipe, Vfs};
use std::collections::HashMap;

const O_ACCMODE: i32 = 3;
const O_NONBLOCK: i32 = 0x800;
const O_WRONLY: i64 = 1;
const MSG_DONTWAIT: i32 = 0x40;
const MSG_MORE: i32 = 0x8000;
const SPLICE_F_NONBLOCK: u32 = 2;
const SPLICE_F_MORE: u32 = 4;
/// `SPLICE_F_ALL`: MOVE | NONBLOCK | MORE | GIFT.
const SPLICE_F_ALL: u32 = 0xf;

const POLLIN: i16 = 0x1;
const POLLOUT: i16 = 0x4;
const POLLERR: i16 = 0x8;
const POLLHUP: i16 = 0x10;
const POLLRDNORM: i16 = 0x40;
const POLLWRNORM: i16 = 0x100;

fn err(e: Errno) -> SysError {
    SysError::Errno(e)
}

/// What a non-socket descriptor is.
#[derive(Debug, Clone, Copy)]
enum Open {
    /// A regular file, read-only.
    File { f: OpenFile, nonblock: bool },
    /// A pipe's read end.
    PipeRead { pipe: usize, nonblock: bool },
    /// A pipe's write end.
    PipeWrite { pipe: usize, nonblock: bool },
}

/// The files, the pipes, and the descriptors open on them.
#[derive(Debug, Default)]
pub(super) struct Files {
    /// The regular files (by path).
    pub fs: Vfs,
    open: HashMap<i32, Open>,
    pipes: Vec<Pipe>,
}

impl Files {
    /// `fd` is an open file or pipe end.
    pub fn has(&self, fd: i32) -> bool {
        self.open.contains_key(&fd)
    }

    /// `fd` is a pipe end.
    pub fn is_pipe(&self, fd: i32) -> bool {
        matches!(
            self.open.get(&fd),
            Some(Open::PipeRead { .. } | Open::PipeWrite { .. })
        )
    }

    /// `close(fd)`: true if it was one of these.
    pub fn close(&mut self, fd: i32) -> bool {
        match self.open.remove(&fd) {
            Some(Open::PipeRead { pipe, .. }) => self.pipes[pipe].reader = false,
            Some(Open::PipeWrite { pipe, .. }) => self.pipes[pipe].writer = false,
            Some(Open::File { .. }) => {}
            None => return false,
        }
        true
    }

    /// `fcntl` on a file or pipe end: `F_GETFD`/`F_SETFD`, `F_GETFL` (the
    /// access mode and `O_NONBLOCK`), `F_SETFL` (`O_NONBLOCK`).
    pub fn fcntl(&mut self, fd: i32, cmd: i32, arg: i64) -> SysResult {
        let Some(o) = self.open.get_mut(&fd) else {
            return Err(err(Errno::EBADF));
        };
        let (mode, nb) = match o {
            Open::File { nonblock, .. } | Open::PipeRead { nonblock, .. } => (0, nonblock),
            Open::PipeWrite { nonblock, .. } => (O_WRONLY, nonblock),
        };
        match cmd {
            1 | 2 => Ok(0),
            3 => Ok(mode | if *nb { i64::from(O_NONBLOCK) } else { 0 }),
            4 => {
                *nb = arg & i64::from(O_NONBLOCK) != 0;
                Ok(0)
            }
            _ => Err(SysError::Unsupported(format!("fcntl command {cmd}"))),
        }
    }

    /// `poll` of a file or pipe end (`pipe_poll`): a file is always
    /// readable; a read end has data or a gone writer, a write end room or
    /// a gone reader.
    pub fn poll(&self, fd: i32) -> Option<i16> {
        Some(match *self.open.get(&fd)? {
            Open::File { .. } => POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM,
            Open::PipeRead { pipe, .. } => {
                let p = &self.pipes[pipe];
                let mut m = 0;
                if !p.is_empty() {
                    m |= POLLIN | POLLRDNORM;
                }
                if !p.writer {
                    m |= POLLHUP;
                }
                m
            }
            Open::PipeWrite { pipe, .. } => {
                let p = &self.pipes[pipe];
                let mut m = 0;
                if p.space() > 0 {
                    m |= POLLOUT | POLLWRNORM;
                }
                if !p.reader {
                    m |= POLLERR;
                }
                m
            }
        })
    }

    fn pipe_of(&self, fd: i32) -> Option<(usize, bool, bool)> {
        match *self.open.get(&fd)? {
            Open::PipeRead { pipe, nonblock } => Some((pipe, false, nonblock)),
            Open::PipeWrite { pipe, nonblock } => Some((pipe, true, nonblock)),
            Open::File { .. } => None,
        }
    }
}

impl NetpathHost {
    /// `open(path, flags)`: read-only files only.
    pub(super) fn open_file(&mut self, path: &str, flags: i32) -> SysResult {
        if flags & O_ACCMODE != 0 || flags & !(O_ACCMODE | O_NONBLOCK | 0x80000) != 0 {
            return Err(SysError::Unsupported(format!(
                "open flags {flags:#x} (the host's files are read-only)"
            )));
        }
        let f = self.vfs.fs.open(path).map_err(|e| err(Errno(e)))?;
        let fd = self.alloc_fd();
        let nonblock = flags & O_NONBLOCK != 0;
        self.vfs.open.insert(fd, Open::File { f, nonblock });
        Ok(fd.into())
    }

    /// `pipe()`: a new pipe's read and write ends, the two lowest free
    /// descriptors.
    pub(super) fn pipe_pair(&mut self) -> (i32, i32) {
        self.vfs.pipes.push(Pipe::default());
        let pipe = self.vfs.pipes.len() - 1;
        let r = self.alloc_fd();
        self.vfs.open.insert(
            r,
            Open::PipeRead {
                pipe,
                nonblock: false,
            },
        );
        let w = self.alloc_fd();
        self.vfs.open.insert(
            w,
            Open::PipeWrite {
                pipe,
                nonblock: false,
            },
        );
        (r, w)
    }

    /// `read(fd)` of a file (from its position) or a pipe's read end
    /// (`pipe_read`: waits for data while a writer is open).
    pub(super) fn file_read(&mut self, fd: i32, len: usize, flags: i32) -> SysResult {
        match self.vfs.open.get(&fd).copied() {
            Some(Open::File { mut f, nonblock }) => {
                let n = self.vfs.fs.read_at(&f, f.pos, len).len();
                f.pos += n as u64;
                self.vfs.open.insert(fd, Open::File { f, nonblock });
                Ok(n as i64)
            }
            Some(Open::PipeRead { pipe, nonblock }) => {
                let p = &mut self.vfs.pipes[pipe];
                if len == 0 {
                    return Ok(0);
                }
                if p.is_empty() {
                    return if !p.writer {
                        Ok(0)
                    } else if nonblock || flags & MSG_DONTWAIT != 0 {
                        Err(err(Errno::EAGAIN))
                    } else {
                        Err(SysError::WouldBlock)
                    };
                }
                Ok(p.read(len).len() as i64)
            }
            Some(Open::PipeWrite { .. }) | None => Err(err(Errno::EBADF)),
        }
    }

    /// `write(fd)` of `len` zero bytes to a pipe's write end (`pipe_write`:
    /// `EPIPE` without a reader, waits for room).
    pub(super) fn pipe_write(&mut self, fd: i32, len: usize, flags: i32) -> SysResult {
        let Some((pipe, true, nonblock)) = self.vfs.pipe_of(fd) else {
            return Err(err(Errno::EBADF));
        };
        let p = &mut self.vfs.pipes[pipe];
        if !p.reader {
            return Err(err(Errno::EPIPE));
        }
        if len > 0 && p.space() == 0 {
            return if nonblock || flags & MSG_DONTWAIT != 0 {
                Err(err(Errno::EAGAIN))
            } else {
                Err(SysError::WouldBlock)
            };
        }
        Ok(p.write(&vec![0; len.min(p.space())]) as i64)
    }

    /// `sendfile(out_fd, in_fd, offset, count)` (`do_sendfile`): from a
    /// regular file at `*offset` (or its position) into a TCP socket or a
    /// pipe.
    pub(super) fn sendfile_to(
        &mut self,
        out_fd: i32,
        in_fd: i32,
        offset: Option<&mut i64>,
        count: usize,
    ) -> SysResult {
        let f = match self.vfs.open.get(&in_fd) {
            Some(Open::File { f, .. }) => *f,
            // A pipe end has no FMODE_PREAD; neither pipe nor socket is a
            // regular file (splice_direct_to_actor).
            Some(_) if offset.is_some() => return Err(err(Errno::ESPIPE)),
            Some(_) => return Err(err(Errno::EINVAL)),
            None if self.fds.contains_key(&in_fd) => {
                return Err(err(if offset.is_some() {
                    Errno::ESPIPE
                } else {
                    Errno::EINVAL
                }))
            }
            None => return Err(err(Errno::EBADF)),
        };
        let pos = match offset.as_deref() {
            Some(&o) => u64::try_from(o).map_err(|_| err(Errno::EINVAL))?,
            None => f.pos,
        };
        let data = self.vfs.fs.read_at(&f, pos, count).to_vec();
        let sent = if let Some((pipe, is_write, _)) = self.vfs.pipe_of(out_fd) {
            if !is_write {
                return Err(err(Errno::EBADF));
            }
            // splice_file_to_pipe.
            let p = &mut self.vfs.pipes[pipe];
            if !p.reader {
                return Err(err(Errno::EPIPE));
            }
            if p.space() == 0 && !data.is_empty() {
                return Err(SysError::WouldBlock);
            }
            p.write(&data) as i64
        } else if self.vfs.has(out_fd) {
            // A file open read-only: not FMODE_WRITE.
            return Err(err(Errno::EBADF));
        } else {
            self.id(out_fd)?;
            if data.is_empty() {
                0
            } else {
                // splice_to_socket: MSG_DONTWAIT on a non-blocking socket
                // (the host's send knows it).
                self.send_iov(out_fd, data.len(), &[data.len()], 0, None, Some(&data))?
            }
        };
        let end = pos + sent as u64;
        match offset {
            Some(o) => *o = end as i64,
            None => {
                if let Some(Open::File { f, .. }) = self.vfs.open.get_mut(&in_fd) {
                    f.pos = end;
                }
            }
        }
        Ok(sent)
    }

    /// `splice(fd_in, off_in, fd_out, off_out, len, flags)` (`do_splice`).
    pub(super) fn splice_fds(&mut self, c: SpliceCall<'_>) -> SysResult {
        if c.len == 0 {
            return Ok(0);
        }
        if c.flags & !SPLICE_F_ALL != 0 {
            return Err(err(Errno::EINVAL));
        }
        let known = |h: &Self, fd: i32| h.fds.contains_key(&fd) || h.vfs.has(fd);
        if !known(self, c.fd_in) || !known(self, c.fd_out) {
            return Err(err(Errno::EBADF));
        }
        let pin = self.vfs.pipe_of(c.fd_in);
        let pout = self.vfs.pipe_of(c.fd_out);
        if (pin.is_some() && c.off_in.is_some()) || (pout.is_some() && c.off_out.is_some()) {
            return Err(err(Errno::ESPIPE));
        }
        // FMODE_READ on the input, FMODE_WRITE on the output.
        if pin.is_some_and(|(_, w, _)| w)
            || pout.is_some_and(|(_, w, _)| !w)
            || matches!(self.vfs.open.get(&c.fd_out), Some(Open::File { .. }))
        {
            return Err(err(Errno::EBADF));
        }
        match (pin, pout) {
            (Some(_), Some(_)) => Err(SysError::Unsupported("splice between two pipes".into())),
            (None, Some((pipe, _, nb))) => {
                let nonblock = nb || c.flags & SPLICE_F_NONBLOCK != 0;
                self.splice_to_pipe(c.fd_in, c.off_in, pipe, c.len, nonblock)
            }
            (Some((pipe, _, nb)), None) => {
                let nonblock = nb || c.flags & SPLICE_F_NONBLOCK != 0;
                self.splice_pipe_to_socket(pipe, c.fd_out, c.len, c.flags, nonblock)
            }
            (None, None) => Err(err(Errno::EINVAL)),
        }
    }

    /// A socket or a file into a pipe (`splice_file_to_pipe`: wait for
    /// room, then the input's `splice_read`).
    fn splice_to_pipe(
        &mut self,
        fd_in: i32,
        off_in: Option<&mut i64>,
        pipe: usize,
        len: usize,
        nonblock: bool,
    ) -> SysResult {
        let p = &self.vfs.pipes[pipe];
        if !p.reader {
            return Err(err(Errno::EPIPE));
        }
        if p.space() == 0 {
            return Err(if nonblock {
                err(Errno::EAGAIN)
            } else {
                SysError::WouldBlock
            });
        }
        let len = len.min(p.space());
        if let Some(Open::File { f, .. }) = self.vfs.open.get(&fd_in).copied() {
            let pos = match off_in.as_deref() {
                Some(&o) => u64::try_from(o).map_err(|_| err(Errno::EINVAL))?,
                None => f.pos,
            };
            let data = self.vfs.fs.read_at(&f, pos, len).to_vec();
            let n = self.vfs.pipes[pipe].write(&data);
            let end = pos + n as u64;
            match off_in {
                Some(o) => *o = end as i64,
                None => {
                    if let Some(Open::File { f, .. }) = self.vfs.open.get_mut(&fd_in) {
                        f.pos = end;
                    }
                }
            }
            return Ok(n as i64);
        }
        // A socket has no FMODE_PREAD.
        if off_in.is_some() {
            return Err(err(Errno::EINVAL));
        }
        let id = self.id(fd_in)?;
        // tcp_splice_read waits for data as the socket's O_NONBLOCK says.
        let sock_nonblock = !self.blocking(fd_in);
        let mut buf = vec![0u8; len];
        let r = self
            .stack
            .tcp_splice_read(self.instant(), id, &mut buf, sock_nonblock);
        self.after_call();
        match r {
            Ok(n) => {
                self.vfs.pipes[pipe].write(&buf[..n]);
                Ok(n as i64)
            }
            Err(netpath::sock::Errno::EAGAIN) if !sock_nonblock => Err(SysError::WouldBlock),
            Err(e) => Err(err(Errno(e.name()))),
        }
    }

    /// A pipe into a TCP socket (`splice_to_socket`: `tcp_sendmsg` with
    /// `MSG_SPLICE_PAGES`, `MSG_MORE` for `SPLICE_F_MORE`). The bytes leave
    /// the pipe once the socket took them.
    fn splice_pipe_to_socket(
        &mut self,
        pipe: usize,
        fd_out: i32,
        len: usize,
        flags: u32,
        nonblock: bool,
    ) -> SysResult {
        self.id(fd_out)?;
        let p = &self.vfs.pipes[pipe];
        if p.is_empty() {
            return if !p.writer {
                Ok(0)
            } else if nonblock {
                Err(err(Errno::EAGAIN))
            } else {
                Err(SysError::WouldBlock)
            };
        }
        let data = p.peek(len);
        let mut msg = 0;
        if flags & SPLICE_F_MORE != 0 {
            msg |= MSG_MORE;
        }
        let n = self.send_iov(fd_out, data.len(), &[data.len()], msg, None, Some(&data))?;
        self.vfs.pipes[pipe].read(usize::try_from(n).unwrap_or(0));
        Ok(n)
    }
}
