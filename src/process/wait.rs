//! Waiting for a child and decoding how it ended: `waitpid(2)`.
//!
//! A child that has ended stays in the process table as a *zombie* until its
//! parent collects its status. `waitpid(pid, ...)` collects one given child;
//! this module never waits for "any child" (`wait()` / `waitpid(-1)`), because
//! in a test binary that would steal the children of other tests.

use crate::error::{Error, Result};
use crate::sys;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

/// How a child ended (or changed state), decoded from the raw `wait` status
/// with the `WIFEXITED`/`WEXITSTATUS`/`WIFSIGNALED`/`WTERMSIG`/`WCOREDUMP`
/// macros of `waitpid(2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ExitStatus {
    /// The child called `exit`/`_exit` with this code (0..=255).
    Exited(i32),
    /// The child was killed by a signal; `core` says whether it dumped core.
    Signaled {
        /// The signal number (`SIGKILL` = 9, ...).
        signal: i32,
        /// `WCOREDUMP`: a core file was written.
        core: bool,
    },
    /// The child was stopped by this signal (only reported with `WUNTRACED`).
    Stopped(i32),
    /// A stopped child was resumed by `SIGCONT` (only with `WCONTINUED`).
    Continued,
}

impl ExitStatus {
    /// Decodes a raw status word as filled in by `waitpid(2)`.
    pub fn from_raw(status: i32) -> Self {
        if libc::WIFEXITED(status) {
            ExitStatus::Exited(libc::WEXITSTATUS(status))
        } else if libc::WIFSIGNALED(status) {
            ExitStatus::Signaled {
                signal: libc::WTERMSIG(status),
                core: libc::WCOREDUMP(status),
            }
        } else if libc::WIFSTOPPED(status) {
            ExitStatus::Stopped(libc::WSTOPSIG(status))
        } else {
            ExitStatus::Continued
        }
    }

    /// The exit code the way Python's `multiprocessing` reports it:
    /// the code for a normal exit, minus the signal number for a signal death.
    /// `None` for a stop or continue event.
    pub fn python_exitcode(&self) -> Option<i32> {
        match *self {
            ExitStatus::Exited(code) => Some(code),
            ExitStatus::Signaled { signal, .. } => Some(-signal),
            _ => None,
        }
    }

    /// True for a normal exit with code 0.
    pub fn success(&self) -> bool {
        *self == ExitStatus::Exited(0)
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            ExitStatus::Exited(code) => write!(f, "exited with status {code}"),
            ExitStatus::Signaled { signal, core } => {
                let name = Signal::try_from(signal).map(|s| s.as_str()).unwrap_or("?");
                let core = if core { " (core dumped)" } else { "" };
                write!(f, "killed by signal {signal} ({name}){core}")
            }
            ExitStatus::Stopped(signal) => write!(f, "stopped by signal {signal}"),
            ExitStatus::Continued => write!(f, "continued"),
        }
    }
}

/// Options for [`wait_pid`]: which state changes to report besides exit.
#[derive(Debug, Clone, Copy, Default)]
pub struct WaitOptions {
    /// `WNOHANG`: return `None` at once if the child has not changed state.
    pub no_hang: bool,
    /// `WUNTRACED`: also report a child stopped by a signal.
    pub stopped: bool,
    /// `WCONTINUED`: also report a stopped child resumed by `SIGCONT`.
    pub continued: bool,
}

/// `waitpid(pid, &status, options)`: waits for one given child.
///
/// Returns `None` only with `no_hang` when the child has not changed state.
/// Retries on `EINTR`. A child that is not ours (or already reaped) fails with
/// `ECHILD`.
pub fn wait_pid(pid: Pid, opts: WaitOptions) -> Result<Option<ExitStatus>> {
    let mut flags = 0;
    if opts.no_hang {
        flags |= libc::WNOHANG;
    }
    if opts.stopped {
        flags |= libc::WUNTRACED;
    }
    if opts.continued {
        flags |= libc::WCONTINUED;
    }
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid, writable int for the duration of the call.
        let ret = unsafe { libc::waitpid(pid.as_raw(), &mut status, flags) };
        match sys::check("waitpid", pid, ret) {
            Ok(0) => return Ok(None),
            Ok(_) => return Ok(Some(ExitStatus::from_raw(status))),
            Err(e) if e.errno() == Some(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Waits until the child `pid` exits and reaps it.
pub fn wait_exit(pid: Pid) -> Result<ExitStatus> {
    let status = wait_pid(pid, WaitOptions::default())?;
    Ok(status.expect("waitpid without WNOHANG always reports a status"))
}

/// Waits at most `timeout` for the child `pid` to exit, and reaps it if it did.
///
/// Returns `Ok(None)` when the deadline passed and the child is still running
/// (it is *not* killed: that is the caller's decision). On Linux the wait sleeps
/// in `poll(2)` on a `pidfd_open(2)` descriptor, so it wakes the moment the child
/// exits; elsewhere it polls `waitpid(WNOHANG)` with a growing back-off.
pub fn wait_exit_timeout(pid: Pid, timeout: Duration) -> Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    let no_hang = WaitOptions {
        no_hang: true,
        ..Default::default()
    };
    let mut backoff = Duration::from_micros(50);
    let pidfd = open_pidfd(pid);
    loop {
        if let Some(status) = wait_pid(pid, no_hang)? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        let left = deadline - now;
        match &pidfd {
            Some(fd) => sleep_until_exit(fd, pid, left)?,
            None => {
                std::thread::sleep(backoff.min(left));
                backoff = (backoff * 2).min(Duration::from_millis(10));
            }
        }
    }
}

/// `pidfd_open(2)`: a descriptor that becomes readable when `pid` exits, or
/// `None` where pidfds are not available (the caller then polls).
#[cfg(target_os = "linux")]
fn open_pidfd(pid: Pid) -> Option<OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just returned this descriptor to us; nobody else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[cfg(not(target_os = "linux"))]
#[cfg_attr(mutants, mutants::skip)] // macOS only: no Linux test can see it (docs/mutants.md)
fn open_pidfd(_pid: Pid) -> Option<OwnedFd> {
    None
}

/// Sleeps until the process of `fd` (a pidfd of `pid`) exits or `left` elapses.
fn sleep_until_exit(fd: &OwnedFd, pid: Pid, left: Duration) -> Result<()> {
    use std::os::fd::AsFd;
    let mut fds = [nix::poll::PollFd::new(
        fd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let ms = left.as_millis().clamp(1, u16::MAX as u128) as u16;
    match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
        Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
        Err(e) => Err(sys::errno_error(
            "poll",
            format!("pidfd of {pid}"),
            e as i32,
        )),
    }
}

/// Convenience for error messages: a `Timeout` naming the child.
pub(crate) fn timeout_error(pid: Pid, after: Duration) -> Error {
    Error::Timeout {
        what: format!("child {pid} to exit"),
        after,
    }
}
