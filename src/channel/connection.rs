//! `multiprocessing.Pipe()`: two connected [`Connection`] ends that carry
//! whole messages.
//!
//! The tutorial's steps, in order:
//! 1. `parent_conn, child_conn = Pipe(duplex)` ([`pipe`]): duplex (the
//!    default) is a socket pair, both ends read and write; simplex
//!    (`duplex=False`) is an OS pipe, the first end only reads, the second
//!    only writes;
//! 2. fork; each process keeps its end and drops the other;
//! 3. `conn.send(obj)` ([`Connection::send`]) writes one frame: a 4-byte length,
//!    then the value encoded with postcard ([`crate::frame`]); `send_bytes`
//!    sends raw bytes in one frame;
//! 4. `conn.recv()` ([`Connection::recv`]) blocks until a whole frame has
//!    arrived; `conn.poll(timeout)` ([`Connection::poll`]) says whether one is
//!    ready;
//! 5. once every copy of the peer end is closed, `recv` fails with
//!    end-of-file ([`Error::Eof`], Python's `EOFError`).
//!
//! A peer that dies in the middle of a frame, sends a length above the limit
//! ([`Connection::set_max_message`], 64 MiB by default) or bytes that do not
//! decode is an [`Error::Protocol`], never a panic or an unbounded
//! allocation. A peer that is gone when we write is `EPIPE`, never `SIGPIPE`
//! (see [`super`]).

use super::raw;
use crate::error::{Error, Result};
use crate::frame;
use crate::sys;
use nix::errno::Errno;
use serde::{Serialize, de::DeserializeOwned};
use std::cell::Cell;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

/// `multiprocessing.Pipe(duplex)`: two connected ends.
///
/// With `duplex` (Python's default) both ends are the two sockets of
/// `socketpair(2)` and can send and receive. Without it the pair is a
/// `pipe(2)`: the first end can only receive, the second can only send.
pub fn pipe(duplex: bool) -> Result<(Connection, Connection)> {
    if duplex {
        let (a, b) = raw::socketpair()?;
        Ok((
            Connection::new(a, Role::Duplex),
            Connection::new(b, Role::Duplex),
        ))
    } else {
        let (r, w) = raw::pipe()?;
        Ok((
            Connection::new(r, Role::ReadOnly),
            Connection::new(w, Role::WriteOnly),
        ))
    }
}

/// What an end may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Duplex,
    ReadOnly,
    WriteOnly,
}

/// One end of a [`pipe`]: sends and receives whole messages.
/// The descriptor is closed when the end is dropped (or [`close`](Self::close)d).
#[derive(Debug)]
pub struct Connection {
    fd: OwnedFd,
    role: Role,
    max_message: usize,
    /// Set when a receive stopped in the middle of a frame: the stream is out
    /// of step and no later message could be trusted.
    out_of_step: Cell<bool>,
}

impl Connection {
    fn new(fd: OwnedFd, role: Role) -> Self {
        Connection {
            fd,
            role,
            max_message: frame::DEFAULT_MAX_FRAME,
            out_of_step: Cell::new(false),
        }
    }

    /// `conn.readable`: this end can receive.
    pub fn readable(&self) -> bool {
        self.role != Role::WriteOnly
    }

    /// `conn.writable`: this end can send.
    pub fn writable(&self) -> bool {
        self.role != Role::ReadOnly
    }

    /// The largest message [`recv_bytes`](Self::recv_bytes) accepts; a longer
    /// frame is refused before anything is allocated.
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// Sets the largest message this end accepts.
    pub fn set_max_message(&mut self, bytes: usize) {
        self.max_message = bytes;
    }

    /// `conn.send(obj)`: encodes `value` (postcard) and sends it as one frame
    /// (`write(2)`, or `send(2)` with `MSG_NOSIGNAL` on a socket).
    pub fn send<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        self.check(Role::ReadOnly, "send")?;
        // The length prefix and the encoding in one buffer: one allocation,
        // one copy, one write.
        frame::write_value(&mut self.writer(), value).map_err(|e| self.os_error(e, "write"))
    }

    /// `conn.send_bytes(buf)`: sends raw bytes as one frame. A peer that is
    /// gone is an `EPIPE` error.
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<()> {
        self.check(Role::ReadOnly, "send")?;
        frame::write_frame(&mut self.writer(), bytes).map_err(|e| self.os_error(e, "write"))
    }

    /// A writer on this end that never raises `SIGPIPE`.
    fn writer(&self) -> FdWriter<'_> {
        FdWriter {
            fd: self.fd.as_fd(),
            socket: self.role == Role::Duplex,
        }
    }

    /// `conn.recv()`: blocks until one whole message has arrived and decodes
    /// it. End-of-file between messages is [`Error::Eof`]; a truncated or
    /// corrupt frame is [`Error::Protocol`].
    pub fn recv<T: DeserializeOwned>(&self) -> Result<T> {
        frame::decode(&self.recv_bytes()?)
    }

    /// [`recv`](Self::recv) with a deadline: [`Error::Timeout`] when no whole
    /// message has arrived within `timeout` (see
    /// [`recv_bytes_timeout`](Self::recv_bytes_timeout)).
    pub fn recv_timeout<T: DeserializeOwned>(&self, timeout: Duration) -> Result<T> {
        frame::decode(&self.recv_bytes_timeout(timeout)?)
    }

    /// `conn.recv_bytes()`: blocks until one whole frame has arrived.
    pub fn recv_bytes(&self) -> Result<Vec<u8>> {
        self.receive_frame(None)
    }

    /// [`recv_bytes`](Self::recv_bytes) with a deadline. If the deadline
    /// passes in the middle of a frame (or a frame is refused after its
    /// length prefix was read) the connection is out of step, and every
    /// later receive fails with [`Error::Protocol`].
    pub fn recv_bytes_timeout(&self, timeout: Duration) -> Result<Vec<u8>> {
        self.receive_frame(Some(timeout))
    }

    /// `conn.poll(timeout)` (`poll(2)`): true when a receive would not block,
    /// because data is waiting or the peer has closed (then `recv` reports
    /// end-of-file). `None` waits forever, `Some(ZERO)` only looks.
    pub fn poll(&self, timeout: Option<Duration>) -> Result<bool> {
        self.check(Role::WriteOnly, "poll")?;
        let deadline = timeout.map(|t| Instant::now() + t);
        wait_readable(self.fd.as_fd(), deadline)
            .map_err(|e| sys::errno_error("poll", self, e as i32))
    }

    /// `conn.close()`: closes this end (`close(2)`). Dropping does the same.
    pub fn close(self) {}

    fn receive_frame(&self, timeout: Option<Duration>) -> Result<Vec<u8>> {
        self.check(Role::WriteOnly, "receive")?;
        if self.out_of_step.get() {
            return Err(Error::Protocol(format!(
                "{self}: an earlier receive stopped in the middle of a frame; close this connection"
            )));
        }
        let mut r = FdReader {
            fd: self.fd.as_fd(),
            deadline: timeout.map(|t| Instant::now() + t),
            got: 0,
        };
        let result = frame::read_frame(&mut r, self.max_message);
        // Any failure after part of a frame was consumed (a deadline, a
        // refused length, a truncated payload) leaves the stream's position
        // inside that frame: the next read would take payload bytes for a
        // length prefix, so every later receive is refused instead.
        if result.is_err() && r.got > 0 {
            self.out_of_step.set(true);
        }
        match result {
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::TimedOut => {
                Err(Error::Timeout {
                    what: format!("a message on {self}"),
                    after: timeout.unwrap_or_default(),
                })
            }
            other => other.map_err(|e| self.os_error(e, "read")),
        }
    }

    /// Refuses to use a simplex end the wrong way: `forbidden` is the role
    /// that cannot do `action`.
    fn check(&self, forbidden: Role, action: &str) -> Result<()> {
        if self.role != forbidden {
            return Ok(());
        }
        let (this, other) = match forbidden {
            Role::ReadOnly => ("read-only (first)", "second"),
            _ => ("write-only (second)", "first"),
        };
        Err(Error::invalid(
            "connection end",
            format!(
                "cannot {action} on the {this} end of a simplex pipe (duplex=false); use the {other} end, or make the pipe with duplex=true"
            ),
        ))
    }

    /// Turns an I/O error carrying an `errno` into [`Error::Sys`] naming this end.
    fn os_error(&self, e: Error, call: &'static str) -> Error {
        match e {
            Error::Io { source, .. } if source.raw_os_error().is_some() => {
                sys::errno_error(call, self, source.raw_os_error().unwrap_or_default())
            }
            other => other,
        }
    }
}

impl std::fmt::Display for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.role {
            Role::Duplex => "duplex connection",
            Role::ReadOnly => "read end of a simplex connection",
            Role::WriteOnly => "write end of a simplex connection",
        };
        write!(f, "{kind} (fd {})", self.fd.as_raw_fd())
    }
}

impl AsFd for Connection {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Connection {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

/// `Read` over a descriptor, with an optional deadline checked by `poll(2)`
/// before each `read(2)`; counts the bytes it delivered.
struct FdReader<'a> {
    fd: BorrowedFd<'a>,
    deadline: Option<Instant>,
    got: usize,
}

impl Read for FdReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.deadline.is_some() && !wait_readable(self.fd, self.deadline)? {
            return Err(io::ErrorKind::TimedOut.into());
        }
        let n = nix::unistd::read(self.fd, buf)?;
        self.got += n;
        Ok(n)
    }
}

/// `Write` over a descriptor that never raises `SIGPIPE`.
struct FdWriter<'a> {
    fd: BorrowedFd<'a>,
    socket: bool,
}

impl Write for FdWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = if self.socket {
            raw::send_some(self.fd, buf)
        } else {
            raw::write_some(self.fd, buf)
        };
        Ok(n?)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `poll(2)` for input until `deadline` (`None`: forever). True when a read
/// would not block (data, end-of-file or an error is waiting).
fn wait_readable(fd: BorrowedFd<'_>, deadline: Option<Instant>) -> Result<bool, Errno> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let ms = d.saturating_duration_since(Instant::now()).as_millis();
                PollTimeout::try_from(ms.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) if deadline.is_some_and(|d| Instant::now() < d) => continue,
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}
