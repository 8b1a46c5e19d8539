//! The files and pipes of the runner's host, in memory: what the `sendfile`
//! and `splice` scripts need, so that no run touches the real filesystem.
//!
//! Mirrors, in the small: a regular file's inode and its names (`rm -f`
//! unlinks a name, an open file keeps its inode), `open(O_RDONLY)` with the
//! file position `f_pos` (`do_sys_open`), reads at an offset
//! (`filemap_splice_read` / `do_splice_direct` for `sendfile`), and a pipe
//! (`pipe_inode_info`, `do_pipe2`) of `PIPE_DEF_BUFFERS` (16) page-sized
//! buffers. The pipe counts bytes, not buffers: Linux's holds at most 16
//! buffers whatever their fill (`skb_splice_bits` puts each piece of an skb
//! in its own buffer), so 64 KiB is the most it can hold, not always what
//! it takes.

use std::collections::{BTreeMap, VecDeque};

/// `PIPE_DEF_BUFFERS` × `PAGE_SIZE`: a fresh pipe's capacity.
pub const PIPE_CAPACITY: usize = 16 * 4096;

/// Why a file operation failed (an errno name).
pub type FsError = &'static str;

/// The host's regular files: inodes (contents) and the names that lead to
/// them.
#[derive(Debug, Default)]
pub struct Vfs {
    inodes: Vec<Vec<u8>>,
    names: BTreeMap<String, usize>,
}

/// An open regular file (`struct file`): its inode and position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFile {
    inode: usize,
    /// `f_pos`.
    pub pos: u64,
}

impl Vfs {
    /// `rm -f PATH`: the name goes (nothing if there was none); files
    /// already open keep their contents.
    pub fn remove(&mut self, path: &str) {
        self.names.remove(path);
    }

    /// `dd if=/dev/zero of=PATH bs=B count=N`: PATH is created, or its
    /// inode truncated (open files see it), and holds `len` zero bytes.
    pub fn write_zeros(&mut self, path: &str, len: u64) -> Result<(), FsError> {
        let len = usize::try_from(len).map_err(|_| "EFBIG")?;
        match self.names.get(path) {
            Some(&i) => {
                let data = &mut self.inodes[i];
                data.clear();
                data.resize(len, 0);
            }
            None => {
                self.inodes.push(vec![0; len]);
                self.names.insert(path.to_string(), self.inodes.len() - 1);
            }
        }
        Ok(())
    }

    /// `open(path, O_RDONLY)`: `ENOENT` when there is no such file.
    pub fn open(&self, path: &str) -> Result<OpenFile, FsError> {
        let inode = *self.names.get(path).ok_or("ENOENT")?;
        Ok(OpenFile { inode, pos: 0 })
    }

    /// The file's size (`i_size`).
    pub fn size(&self, f: &OpenFile) -> u64 {
        self.inodes.get(f.inode).map_or(0, |d| d.len() as u64)
    }

    /// Up to `count` bytes of the file from `pos` (fewer at the end, none
    /// past it).
    pub fn read_at(&self, f: &OpenFile, pos: u64, count: usize) -> &[u8] {
        let data = self.inodes.get(f.inode).map_or(&[][..], |d| &d[..]);
        let start = usize::try_from(pos).unwrap_or(usize::MAX).min(data.len());
        let end = start.saturating_add(count).min(data.len());
        &data[start..end]
    }
}

/// A pipe: bytes written at the write end, read in order at the read end.
#[derive(Debug)]
pub struct Pipe {
    buf: VecDeque<u8>,
    capacity: usize,
    /// The read end is open.
    pub reader: bool,
    /// The write end is open.
    pub writer: bool,
}

impl Default for Pipe {
    fn default() -> Self {
        Pipe {
            buf: VecDeque::new(),
            capacity: PIPE_CAPACITY,
            reader: true,
            writer: true,
        }
    }
}

impl Pipe {
    /// Bytes waiting to be read.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Nothing to read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Room left (`pipe_is_full` when 0).
    pub fn space(&self) -> usize {
        self.capacity - self.buf.len()
    }

    /// Appends what fits of `data`; how much did.
    pub fn write(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.space());
        self.buf.extend(&data[..n]);
        n
    }

    /// The first `len` bytes (or all there are) without taking them.
    pub fn peek(&self, len: usize) -> Vec<u8> {
        self.buf.iter().take(len).copied().collect()
    }

    /// Takes up to `len` bytes from the front.
    pub fn read(&mut self, len: usize) -> Vec<u8> {
        let n = len.min(self.buf.len());
        self.buf.drain(..n).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_as_rm_and_dd_leave_them() {
        let mut fs = Vfs::default();
        assert_eq!(fs.open("/tmp/testfile"), Err("ENOENT"));
        fs.remove("/tmp/testfile");
        fs.write_zeros("/tmp/testfile", 5).unwrap();
        let f = fs.open("/tmp/testfile").unwrap();
        assert_eq!((fs.size(&f), f.pos), (5, 0));
        assert_eq!(fs.read_at(&f, 0, 100), &[0; 5]);
        assert_eq!(fs.read_at(&f, 3, 100), &[0; 2]);
        assert_eq!(fs.read_at(&f, 2, 1), &[0]);
        assert!(fs.read_at(&f, 5, 10).is_empty());
        assert!(fs.read_at(&f, u64::MAX, 10).is_empty());
        // dd again truncates the same inode: the open file sees it.
        fs.write_zeros("/tmp/testfile", 2).unwrap();
        assert_eq!(fs.size(&f), 2);
        // rm unlinks the name; the open file keeps its data.
        fs.remove("/tmp/testfile");
        assert_eq!(fs.open("/tmp/testfile"), Err("ENOENT"));
        assert_eq!(fs.read_at(&f, 0, 10), &[0; 2]);
        // A new file by that name is another inode.
        fs.write_zeros("/tmp/testfile", 7).unwrap();
        let g = fs.open("/tmp/testfile").unwrap();
        assert_eq!((fs.size(&f), fs.size(&g)), (2, 7));
    }

    #[test]
    fn pipe_holds_64k_in_order() {
        let mut p = Pipe::default();
        assert!(p.is_empty());
        assert_eq!(p.write(&[1, 2, 3]), 3);
        assert_eq!(p.peek(2), vec![1, 2]);
        assert_eq!(p.len(), 3);
        assert_eq!(p.read(2), vec![1, 2]);
        assert_eq!(p.read(10), vec![3]);
        assert_eq!(p.write(&vec![9; PIPE_CAPACITY + 10]), PIPE_CAPACITY);
        assert_eq!((p.space(), p.write(&[1])), (0, 0));
        assert_eq!(p.read(PIPE_CAPACITY).len(), PIPE_CAPACITY);
    }
}
