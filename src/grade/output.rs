//! Output tied to its writer: every byte a port writes to its standard output
//! or error is attributed to the process that wrote it, at no tracing cost.
//!
//! The steps:
//! 1. [`stream_pair`]: the port's standard output (and error) is one end of
//!    an `AF_UNIX` stream socket pair (`socketpair(2)`), not a pipe; the
//!    grader's end has `SO_PASSCRED` (`unix(7)`);
//! 2. [`recv`]: each `recvmsg(2)` on that end comes with an
//!    `SCM_CREDENTIALS` message naming the pid of the process that wrote the
//!    bytes. The kernel never merges bytes of writers with different
//!    credentials in one read (`unix_stream_read_generic`: "never glue
//!    messages from different writers"), and it takes the pid when the data
//!    is *sent*: the pid is right even when the writer has exited since, and
//!    through `dup`/`dup2`'d descriptors, threads and exec'd programs alike;
//! 3. [`Writers`] keeps, for the kept bytes, which pid wrote each chunk and
//!    when the grader read it; [`lines`] rebuilds each process's lines (a
//!    process's partial line is completed by its own later bytes, never by
//!    another process's).
//!
//! Nothing is traced: a write to standard output costs what it costs on a
//! pipe. What a port sees differs from a pipe only in `fstat` (`S_IFSOCK`) and
//! in that `open("/dev/stdout")` fails (`ENXIO`); `isatty` is false on both,
//! so C stdio and Python buffer fully, as they do on a pipe (the lesson of
//! `exit-flush` stays visible).

use serde::{Deserialize, Serialize};
#[cfg(target_os = "linux")]
use std::os::fd::{AsRawFd, OwnedFd};

/// Chunks kept per stream at most (a flood of tiny writes from many
/// processes cannot grow the list without bound).
const MAX_CHUNKS: usize = 100_000;

/// Bytes of one stream written by one process, in stream order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// The writing process (its thread group id), 0 when unknown.
    pub pid: i32,
    /// Seconds after the start when the grader read it.
    pub at: f64,
    /// How many of the kept bytes it covers.
    pub len: u32,
}

/// One line of output and the process that wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The writing process (0 when unknown).
    pub pid: i32,
    /// The line, without its newline and trailing whitespace.
    pub text: String,
    /// When its last byte was read, seconds after the start.
    pub at: f64,
    /// Its place in the stream: lines are numbered in the order their
    /// newline was written.
    pub seq: usize,
}

/// Step 1: a socket pair for one output stream: `(grader's end, port's end)`.
/// The grader's end only reads and has `SO_PASSCRED`; the port's end only
/// writes. Both are close-on-exec (the port gets its end through `dup2`).
#[cfg(target_os = "linux")]
pub fn stream_pair() -> crate::error::Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{
        AddressFamily, Shutdown, SockFlag, SockType, setsockopt, shutdown, socketpair, sockopt,
    };
    let (ours, port) = crate::sys::nix(
        "socketpair",
        "AF_UNIX SOCK_STREAM (port output)",
        socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        ),
    )?;
    crate::sys::nix(
        "setsockopt",
        "SO_PASSCRED",
        setsockopt(&ours, sockopt::PassCred, &true),
    )?;
    let _ = shutdown(ours.as_raw_fd(), Shutdown::Write);
    let _ = shutdown(port.as_raw_fd(), Shutdown::Read);
    Ok((ours, port))
}

/// Step 2: one `recvmsg(2)` into `buf`: the byte count and the writer's pid
/// (from `SCM_CREDENTIALS`; `None` when the kernel sent none).
#[cfg(target_os = "linux")]
pub fn recv(fd: &OwnedFd, buf: &mut [u8]) -> nix::Result<(usize, Option<i32>)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, UnixCredentials, recvmsg};
    let mut space = nix::cmsg_space!(UnixCredentials);
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(
        fd.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let pid = msg.cmsgs().ok().and_then(|mut c| {
        c.find_map(|m| match m {
            ControlMessageOwned::ScmCredentials(cred) => Some(cred.pid()),
            _ => None,
        })
    });
    Ok((msg.bytes, pid))
}

/// Step 3: who wrote the kept bytes of one stream.
#[derive(Debug)]
pub struct Writers {
    start: std::time::Instant,
    chunks: Vec<Chunk>,
}

impl Writers {
    /// Times are counted from `start` (the run's start).
    pub fn new(start: std::time::Instant) -> Writers {
        Writers {
            start,
            chunks: Vec::new(),
        }
    }

    /// `kept` bytes of a read by `pid` were kept. Consecutive chunks of one
    /// writer are merged.
    pub fn record(&mut self, pid: Option<i32>, kept: usize) {
        if kept == 0 {
            return;
        }
        let pid = pid.unwrap_or(0);
        let at = self.start.elapsed().as_secs_f64();
        let full = self.chunks.len() >= MAX_CHUNKS;
        match self.chunks.last_mut() {
            Some(last) if last.pid == pid => {
                last.len = last.len.saturating_add(kept as u32);
                last.at = at;
            }
            _ if full => {}
            _ => self.chunks.push(Chunk {
                pid,
                at,
                len: kept as u32,
            }),
        }
    }

    /// The chunks, in stream order.
    pub fn into_chunks(self) -> Vec<Chunk> {
        self.chunks
    }
}

/// Every line of `text` (the kept bytes of a stream) with its writer, from
/// `chunks`. Without chunks (a run captured some other way), every line is
/// attributed to pid 0.
pub fn lines(text: &str, chunks: &[Chunk]) -> Vec<Line> {
    let bytes = text.as_bytes();
    let full = [Chunk {
        pid: 0,
        at: 0.0,
        len: bytes.len() as u32,
    }];
    let chunks = if chunks.is_empty() { &full[..] } else { chunks };
    let mut pending: std::collections::BTreeMap<i32, Vec<u8>> = Default::default();
    let mut out = Vec::new();
    let mut at = 0usize;
    for c in chunks {
        let end = (at + c.len as usize).min(bytes.len());
        let buf = pending.entry(c.pid).or_default();
        for &b in &bytes[at..end] {
            if b == b'\n' {
                out.push(line(c.pid, buf, c.at, out.len()));
                buf.clear();
            } else {
                buf.push(b);
            }
        }
        at = end;
    }
    let last = chunks.last().map_or(0.0, |c| c.at);
    for (pid, buf) in pending {
        if !buf.is_empty() {
            out.push(line(pid, &buf, last, out.len()));
        }
    }
    out
}

fn line(pid: i32, bytes: &[u8], at: f64, seq: usize) -> Line {
    Line {
        pid,
        text: String::from_utf8_lossy(bytes).trim_end().to_string(),
        at,
        seq,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(pid: i32, len: usize) -> Chunk {
        Chunk {
            pid,
            at: 0.0,
            len: len as u32,
        }
    }

    #[test]
    fn interleaved_partial_lines_are_rebuilt_per_writer() {
        // Process 1 writes "a = " then process 2 writes "b\n", then 1 ends its line.
        let text = "a = b\n1\n";
        let lines = lines(text, &[chunk(1, 4), chunk(2, 2), chunk(1, 2)]);
        let got: Vec<(i32, &str)> = lines.iter().map(|l| (l.pid, l.text.as_str())).collect();
        assert_eq!(got, [(2, "b"), (1, "a = 1")]);
    }

    #[test]
    fn without_chunks_every_line_is_unattributed() {
        let lines = lines("x\ny", &[]);
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| l.pid == 0));
        assert_eq!(lines[1].text, "y");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_pid_of_a_writer_that_exited_is_still_its_own() {
        let (ours, port) = stream_pair().unwrap();
        let raw = port.as_raw_fd();
        let write_hi = move || {
            // SAFETY: write(2) from a valid 3-byte buffer to a descriptor the
            // child inherited open.
            unsafe { libc::write(raw, b"hi\n".as_ptr().cast(), 3) };
            0
        };
        // SAFETY: the child only calls write(2), async-signal-safe.
        let mut child = unsafe { crate::process::fork(write_hi) }.unwrap();
        let pid = child.pid().as_raw();
        child.wait().unwrap();
        // SAFETY: write(2) from a valid buffer to a valid descriptor.
        unsafe { libc::write(raw, b"me\n".as_ptr().cast(), 3) };
        let mut buf = [0u8; 64];
        let (n, who) = recv(&ours, &mut buf).unwrap();
        assert_eq!(
            (&buf[..n], who),
            (&b"hi\n"[..], Some(pid)),
            "the exited child's bytes alone"
        );
        let (n, who) = recv(&ours, &mut buf).unwrap();
        assert_eq!(
            (&buf[..n], who),
            (&b"me\n"[..], Some(std::process::id() as i32))
        );
    }
}
