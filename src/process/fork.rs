//! Creating a process: `fork(2)`, and the guard that makes sure it is reaped.
//!
//! `fork` returns twice: 0 in the new child, the child's pid in the parent (and
//! -1 on failure, turned into an error here). The child is a copy of the parent:
//! same code, a *copy* of its memory, copies of its file descriptors.
//!
//! # The rule for multi-threaded parents
//! After `fork` in a process that has more than one thread, the child has only
//! one thread (the one that called `fork`), but every lock another thread held
//! stays locked forever in the child. Until it calls `_exit` or `exec`, such a
//! child may only call *async-signal-safe* functions (`signal-safety(7)`):
//! `write`, `read`, `close`, `_exit`, ... but not `println!` (the stdout lock) or
//! anything that may allocate under a lock another thread held. Every
//! `cargo test` binary is multi-threaded, which is why [`fork`] is `unsafe`.
//! The `ipckit` command line is single-threaded when it runs a reference
//! program, so its children may print freely.

use crate::error::Result;
use crate::process::wait::{self, ExitStatus, WaitOptions};
use crate::sys;
use nix::sys::signal::{self, Signal};
use nix::unistd::{ForkResult, Pid};
use std::time::Duration;

/// The two sides of a [`fork_raw`] call, as a tutorial's `if pid == 0` shows them.
pub enum Fork {
    /// We are the new child process (`fork` returned 0).
    Child,
    /// We are the parent; the guard owns the new child (`fork` returned its pid).
    Parent(ChildGuard),
}

/// `fork(2)`, returning which side we are on, the way the tutorials use it.
///
/// The child side must end with [`crate::process::exit_immediately`] (or another
/// exit) and must not fall through into the parent's code.
///
/// # Safety
/// In a multi-threaded process the child may only call async-signal-safe
/// functions until it exits (see the module documentation).
pub unsafe fn fork_raw() -> Result<Fork> {
    // SAFETY: the caller upholds the async-signal-safety rule for the child.
    match sys::nix("fork", "", unsafe { nix::unistd::fork() })? {
        ForkResult::Child => Ok(Fork::Child),
        ForkResult::Parent { child } => Ok(Fork::Parent(ChildGuard::adopt(child))),
    }
}

/// `fork(2)` with the child's work given as a closure: the child runs `child`,
/// then ends with `_exit(code)` where `code` is what the closure returned (or 1
/// if it panicked), so the child can never run the parent's code by accident.
///
/// # Safety
/// In a multi-threaded process (every test binary) the closure may only call
/// async-signal-safe functions (see the module documentation).
pub unsafe fn fork(child: impl FnOnce() -> i32) -> Result<ChildGuard> {
    // SAFETY: forwarded to the caller.
    match unsafe { fork_raw() }? {
        Fork::Child => {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(1);
            crate::process::exit_immediately(code)
        }
        Fork::Parent(guard) => Ok(guard),
    }
}

/// Owns a child process: it is reaped by [`ChildGuard::wait`], or, if the guard
/// is dropped first, killed with `SIGKILL` and reaped. A guard never leaves a
/// zombie behind.
#[derive(Debug)]
pub struct ChildGuard {
    pid: Pid,
    status: Option<ExitStatus>,
}

impl ChildGuard {
    /// Takes ownership of a child forked by other means. The caller promises
    /// that `pid` is its own child and that nothing else will reap it.
    pub fn adopt(pid: Pid) -> Self {
        ChildGuard { pid, status: None }
    }

    /// The child's process id.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The exit status, once the child has been reaped.
    pub fn status(&self) -> Option<ExitStatus> {
        self.status
    }

    /// Blocks in `waitpid(2)` until the child exits, and reaps it.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = wait::wait_pid(self.pid, WaitOptions::default())?
            .expect("waitpid without WNOHANG always reports a status");
        self.status = Some(status);
        Ok(status)
    }

    /// Like [`wait`](Self::wait), but gives up after `timeout`: then the child
    /// is killed with `SIGKILL`, reaped, and a `Timeout` error returned.
    pub fn wait_deadline(&mut self, timeout: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.wait_timeout(timeout)? {
            return Ok(status);
        }
        self.kill_and_reap();
        Err(wait::timeout_error(self.pid, timeout))
    }

    /// Waits at most `timeout`; `None` means the child is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = wait::wait_exit_timeout(self.pid, timeout)?;
        }
        Ok(self.status)
    }

    /// `waitpid(pid, WNOHANG)`: reaps the child if it has exited, without blocking.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        if self.status.is_none() {
            let opts = WaitOptions {
                no_hang: true,
                ..Default::default()
            };
            self.status = wait::wait_pid(self.pid, opts)?;
        }
        Ok(self.status)
    }

    /// `kill(2)`: sends `sig` to the child (an error once it has been reaped,
    /// because its pid may already belong to another process).
    pub fn signal(&self, sig: Signal) -> Result<()> {
        if self.status.is_some() {
            return Err(crate::Error::Closed(format!(
                "child {} (already reaped)",
                self.pid
            )));
        }
        sys::nix("kill", self.pid, signal::kill(self.pid, sig))
    }

    /// Gives up ownership: the caller must reap the child itself
    /// (used by the zombie and double-fork demonstrations).
    pub fn into_pid(self) -> Pid {
        let pid = self.pid;
        std::mem::forget(self);
        pid
    }

    fn kill_and_reap(&mut self) {
        if self.status.is_none() {
            let _ = signal::kill(self.pid, Signal::SIGKILL);
            self.status = wait::wait_exit(self.pid).ok();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}
