//! Raw byte channels: `pipe(2)`, `socketpair(2)`, and reading and writing
//! them without ever dying of `SIGPIPE`.
//!
//! The steps of the tutorials' raw-pipe programs, in order:
//! 1. make the channel in the parent ([`pipe`] or [`socketpair`]);
//! 2. fork; each process closes the end it does not use (drop the `OwnedFd`);
//! 3. the child writes ([`write_all`]) and closes its end;
//! 4. the parent reads until end-of-file ([`read_to_end`]), closes, waits.

use crate::error::Result;
use crate::sys;
use nix::errno::Errno;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// `pipe(2)`: a one-way channel, returned as `(read_end, write_end)`.
/// Bytes written to the write end are read, in order, from the read end.
/// Both ends close when their `OwnedFd` is dropped.
pub fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    sys::nix("pipe", "", nix::unistd::pipe())
}

/// `socketpair(AF_UNIX, SOCK_STREAM)` (`socketpair(2)`, `unix(7)`): two
/// connected stream sockets, each both readable and writable (full duplex), with
/// no name or port. Either end may be kept by either process.
pub fn socketpair() -> Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    sys::nix(
        "socketpair",
        "AF_UNIX, SOCK_STREAM",
        socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::empty(),
        ),
    )
}

/// One `write(2)` that fails with `EPIPE` instead of killing the process
/// with `SIGPIPE` when no reader is left; retried on `EINTR`. Returns how many
/// bytes were written (possibly fewer than `buf.len()`).
///
/// For the duration of the call `SIGPIPE` is blocked in the calling thread
/// (`pthread_sigmask(3)`); if the write raised it, the pending signal is
/// consumed with `sigwait(3)` before the mask is restored. Nothing
/// process-wide changes, and the function neither allocates nor locks, so it
/// is async-signal-safe: a child forked by a multi-threaded test may call it.
pub fn write_some(fd: BorrowedFd<'_>, buf: &[u8]) -> Result<usize, Errno> {
    let blocked = SigpipeBlocked::new();
    let result = loop {
        // SAFETY: `buf` is a valid slice for `buf.len()` bytes during the call.
        let ret = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
        match Errno::result(ret) {
            Err(Errno::EINTR) => continue,
            other => break other.map(|n| n as usize),
        }
    };
    if result == Err(Errno::EPIPE) {
        blocked.consume_raised_sigpipe();
    }
    result
}

/// Writes all of `buf` to `fd` with [`write_some`]: a vanished reader is an
/// `EPIPE` error naming `what`, never a `SIGPIPE` death.
pub fn write_all(fd: impl AsFd, mut buf: &[u8], what: &str) -> Result<()> {
    while !buf.is_empty() {
        match write_some(fd.as_fd(), buf) {
            Ok(n) => buf = &buf[n..],
            Err(e) => return Err(sys::errno_error("write", what, e as i32)),
        }
    }
    Ok(())
}

/// Reads from `fd` until end-of-file (`read(2)` returning 0), which comes once
/// every copy of the other end is closed, in every process.
pub fn read_to_end(fd: impl AsFd, what: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match nix::unistd::read(fd.as_fd(), &mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(sys::errno_error("read", what, e as i32)),
        }
    }
}

/// `send(2)` with `MSG_NOSIGNAL` on a socket: a vanished peer is `EPIPE`, not
/// `SIGPIPE`. Systems without `MSG_NOSIGNAL` (macOS) use [`write_some`].
pub(crate) fn send_some(fd: BorrowedFd<'_>, buf: &[u8]) -> Result<usize, Errno> {
    #[cfg(target_os = "linux")]
    {
        use nix::sys::socket::{MsgFlags, send};
        loop {
            match send(fd.as_raw_fd(), buf, MsgFlags::MSG_NOSIGNAL) {
                Err(Errno::EINTR) => continue,
                other => return other,
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    write_some(fd, buf)
}

/// `SIGPIPE` blocked in this thread until drop, when the old mask comes back.
struct SigpipeBlocked {
    old_mask: libc::sigset_t,
    was_pending: bool,
}

impl SigpipeBlocked {
    fn new() -> Self {
        let set = sigpipe_set();
        // SAFETY: an all-zero sigset_t is a valid value to be overwritten by
        // pthread_sigmask.
        let mut old_mask = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are valid sigset_t values on our stack;
        // SIG_BLOCK with a valid set cannot fail.
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old_mask) };
        SigpipeBlocked {
            old_mask,
            was_pending: sigpipe_pending(),
        }
    }

    /// Takes the `SIGPIPE` our write raised off the pending set, so that it is
    /// not delivered (and kills us) when the old mask is restored. A `SIGPIPE`
    /// that was already pending before the write is left alone.
    fn consume_raised_sigpipe(&self) {
        if !self.was_pending && sigpipe_pending() {
            let set = sigpipe_set();
            let mut sig = 0;
            // SAFETY: SIGPIPE is pending and blocked, so sigwait returns at once;
            // both pointers are valid for the call.
            unsafe { libc::sigwait(&set, &mut sig) };
        }
    }
}

impl Drop for SigpipeBlocked {
    fn drop(&mut self) {
        // SAFETY: `old_mask` is the mask pthread_sigmask gave us; setting it back
        // cannot fail.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old_mask, std::ptr::null_mut()) };
    }
}

fn sigpipe_set() -> libc::sigset_t {
    // SAFETY: `sigset_t` is plain data: all zeroes is a valid value.
    let mut set = unsafe { std::mem::zeroed() };
    // SAFETY: sigemptyset initialises the set we pass.
    unsafe { libc::sigemptyset(&mut set) };
    // SAFETY: a valid signal number, added to an initialised set.
    unsafe { libc::sigaddset(&mut set, libc::SIGPIPE) };
    set
}

fn sigpipe_pending() -> bool {
    // SAFETY: `sigset_t` is plain data: all zeroes is a valid value.
    let mut set = unsafe { std::mem::zeroed() };
    // SAFETY: sigpending fills the set we pass.
    unsafe { libc::sigpending(&mut set) };
    // SAFETY: sigismember only reads the set sigpending filled.
    unsafe { libc::sigismember(&set, libc::SIGPIPE) == 1 }
}
