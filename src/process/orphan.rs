//! Orphans and the double fork.
//!
//! The tutorial's steps: the parent forks a child and waits for it; the child
//! forks a grandchild and exits at once; the grandchild, now an *orphan*, is
//! adopted by init (pid 1) or by the nearest ancestor that declared itself a
//! *subreaper* (`prctl(2)`, `PR_SET_CHILD_SUBREAPER`), and that adopter reaps it
//! when it exits. The parent never has to wait for the grandchild, and no
//! zombie is left behind.

use crate::error::{Error, Result};
use crate::process::fork;
use crate::sys;
use nix::unistd::Pid;
use std::os::fd::OwnedFd;
use std::time::Duration;

/// The grandchild of a [`double_fork`]: its pid, and a pipe on which it reports
/// the pid of the process that adopted it.
pub struct Orphan {
    /// The grandchild's process id.
    pub pid: Pid,
    report: OwnedFd,
}

impl Orphan {
    /// Reads the adopter's pid that the grandchild wrote once its parent had
    /// exited (waits at most `timeout`, via `poll(2)` then `read(2)`).
    pub fn adopter(&self, timeout: Duration) -> Result<Pid> {
        read_pid(&self.report, timeout, "the orphan's adopter report")
    }
}

/// The double fork: returns once the middle child has exited and been reaped;
/// the grandchild then runs `work` as an orphan and exits with its result.
///
/// The grandchild first waits (with `getppid(2)`, every millisecond) until it
/// has been adopted, writes its new parent's pid to the report pipe, then runs
/// `work`. Whoever adopted it (init, or a subreaper) must reap it.
///
/// # Safety
/// As [`fork`](crate::process::fork): in a multi-threaded process `work` may only
/// call async-signal-safe functions.
pub unsafe fn double_fork(work: impl FnOnce() -> i32) -> Result<Orphan> {
    let (read_end, write_end) = sys::nix("pipe", "", nix::unistd::pipe())?;
    // Each process closes the ends it does not use by dropping its *own* copy
    // of the `OwnedFd` (`close(2)`): after `fork` a child's memory is a copy,
    // so taking an end out of its `Option` there leaves the parent's in place.
    let (mut read_end, mut write_end) = (Some(read_end), Some(write_end));
    let middle_work = || {
        drop(read_end.take());
        let middle_pid = nix::unistd::getpid();
        let grandchild_work = || {
            while nix::unistd::getppid() == middle_pid {
                std::thread::sleep(Duration::from_millis(1));
            }
            if let Some(writer) = write_end.take() {
                write_pid(&writer, nix::unistd::getppid());
            }
            work()
        };
        // SAFETY: forwarded to our caller: the middle child is a fork of the
        // caller's process, and the grandchild uses only getppid, nanosleep,
        // write, close, and `work`.
        let grandchild = unsafe { fork(grandchild_work) };
        match (grandchild, &write_end) {
            (Ok(guard), Some(writer)) => {
                write_pid(writer, guard.into_pid()); // reaped by its adopter, not by us
                0
            }
            _ => 1,
        }
    };
    // SAFETY: forwarded to the caller; the middle child only forks, writes and exits.
    let mut middle = unsafe { fork(middle_work) }?;
    drop(write_end);
    let status = middle.wait()?;
    if !status.success() {
        return Err(Error::Died(format!(
            "the middle child of a double fork {status}"
        )));
    }
    let read_end = read_end.expect("the parent's copy of the read end is untouched");
    let pid = read_pid(&read_end, Duration::from_secs(5), "grandchild's pid")?;
    Ok(Orphan {
        pid,
        report: read_end,
    })
}

/// Writes a pid as 4 native-endian bytes with `write(2)` (async-signal-safe).
fn write_pid(fd: &OwnedFd, pid: Pid) {
    let _ = nix::unistd::write(fd, &pid.as_raw().to_ne_bytes());
}

fn read_pid(fd: &OwnedFd, timeout: Duration, what: &str) -> Result<Pid> {
    let bytes = sys::read_exact_timeout(fd, 4, timeout, what)?;
    Ok(Pid::from_raw(i32::from_ne_bytes(
        bytes.try_into().expect("read 4 bytes"),
    )))
}
