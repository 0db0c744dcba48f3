//! `multiprocessing.Process`: a target function run in a child process.
//!
//! The tutorial's steps: wrap the work in a function; make a process object
//! with that target (its name defaults to `Process-1`, `Process-2`, ...);
//! `start()` forks the child, which runs the target; `join()` waits for it.
//! `exitcode` is the child's exit status, or minus the signal number if a
//! signal killed it.
//!
//! Unlike Python, a `Process` can never be left a zombie: dropping a started
//! process reaps it (a daemon is terminated first; a non-daemon is waited for,
//! as Python waits for non-daemon children when the interpreter exits).

use crate::error::{Error, Result};
use crate::process::fork::{ChildGuard, fork};
use crate::process::wait::ExitStatus;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static NEXT_NUMBER: AtomicUsize = AtomicUsize::new(1);

/// How long a dropped daemon gets between `SIGTERM` and `SIGKILL`.
const DAEMON_GRACE: Duration = Duration::from_millis(500);

type Target = Box<dyn FnOnce()>;

/// A child process running a target closure, with Python's `Process` API.
pub struct Process {
    name: String,
    daemon: bool,
    target: Option<Target>,
    child: Option<ChildGuard>,
}

impl Process {
    /// A process object for `target`, named `Process-N` (N counts up from 1
    /// in this process, as in Python). Nothing runs until [`start`](Self::start).
    pub fn new(target: impl FnOnce() + 'static) -> Self {
        let n = NEXT_NUMBER.fetch_add(1, Ordering::Relaxed);
        Process {
            name: format!("Process-{n}"),
            daemon: false,
            target: Some(Box::new(target)),
            child: None,
        }
    }

    /// Replaces the default name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The process's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the process is a daemon.
    pub fn daemon(&self) -> bool {
        self.daemon
    }

    /// Marks the process as a daemon: it is terminated when this object is
    /// dropped, and (on Linux, `PR_SET_PDEATHSIG`) killed if the thread that
    /// started it dies. Only allowed before `start`, as in Python.
    pub fn set_daemon(&mut self, daemon: bool) -> Result<()> {
        if self.target.is_none() {
            return Err(Error::invalid(
                "daemon flag",
                format!(
                    "{} has already been started; set daemon before start()",
                    self.name
                ),
            ));
        }
        self.daemon = daemon;
        Ok(())
    }

    /// Forks the child, which runs the target, flushes standard output and
    /// exits with 0 (or 1 if the target panicked). Standard output is flushed
    /// before the fork so buffered text is not printed twice.
    ///
    /// # Safety
    /// As [`fork`](crate::process::fork): in a multi-threaded process the
    /// target may only call async-signal-safe functions. Moreover the child
    /// itself flushes standard output after the target, which takes stdout's
    /// lock: in a multi-threaded process no other thread may be printing to
    /// standard output while `start` forks, or the child can block forever.
    pub unsafe fn start(&mut self) -> Result<()> {
        let target = self.target.take().ok_or_else(|| {
            Error::invalid("start", format!("{} can only be started once", self.name))
        })?;
        let _ = std::io::Write::flush(&mut std::io::stdout());
        let daemon = self.daemon;
        let parent = nix::unistd::getpid();
        let work = move || {
            if daemon {
                die_with_parent(parent);
            }
            target();
            let _ = std::io::Write::flush(&mut std::io::stdout());
            0
        };
        // SAFETY: forwarded to the caller.
        let child = unsafe { fork(work) }?;
        self.child = Some(child);
        Ok(())
    }

    /// The child's pid, once started.
    pub fn pid(&self) -> Option<Pid> {
        self.child.as_ref().map(ChildGuard::pid)
    }

    /// True from `start` until the child has exited (checked with
    /// `waitpid(WNOHANG)`, which also reaps it if it has).
    pub fn is_alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Waits for the child to exit, at most `timeout` if given. Returns
    /// without error when the timeout elapses; check [`exitcode`](Self::exitcode)
    /// or [`is_alive`](Self::is_alive), as in Python.
    pub fn join(&mut self, timeout: Option<Duration>) -> Result<()> {
        let child = self
            .child
            .as_mut()
            .ok_or_else(|| Error::invalid("join", format!("{} has not been started", self.name)))?;
        match timeout {
            Some(t) => child.wait_timeout(t).map(|_| ()),
            None => child.wait().map(|_| ()),
        }
    }

    /// The exit code once the child has been reaped: its status, or minus the
    /// signal number that killed it (`-9` for `SIGKILL`). `None` while running.
    pub fn exitcode(&self) -> Option<i32> {
        self.status().and_then(|s| s.python_exitcode())
    }

    /// The decoded exit status once the child has been reaped.
    pub fn status(&self) -> Option<ExitStatus> {
        self.child.as_ref().and_then(ChildGuard::status)
    }

    /// Sends `SIGTERM` (Python's `terminate()`); a no-op once reaped.
    pub fn terminate(&self) -> Result<()> {
        self.send(Signal::SIGTERM)
    }

    /// Sends `SIGKILL` (Python's `kill()`); a no-op once reaped.
    pub fn kill(&self) -> Result<()> {
        self.send(Signal::SIGKILL)
    }

    fn send(&self, sig: Signal) -> Result<()> {
        match self.child.as_ref().map(|child| child.signal(sig)) {
            // Not started, or already reaped: nothing to signal.
            None | Some(Err(Error::Closed(_))) => Ok(()),
            Some(sent) => sent,
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        // A daemon that ignores SIGTERM is killed and reaped by wait_deadline.
        if self.daemon && child.signal(Signal::SIGTERM).is_ok() {
            let _ = child.wait_deadline(DAEMON_GRACE);
        }
        let _ = child.wait();
    }
}

/// Asks the kernel to send `SIGKILL` to this (child) process when the thread
/// that forked it dies (`prctl(2)`, `PR_SET_PDEATHSIG`; Linux only), and dies
/// at once if `parent` is already gone: a parent that exited between `fork`
/// and the `prctl` sends no signal, so the child checks `getppid(2)` after it.
/// Async-signal-safe (prctl, getppid, kill).
#[cfg(target_os = "linux")]
fn die_with_parent(parent: Pid) {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number; async-signal-safe.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    if nix::unistd::getppid() != parent {
        let _ = nix::sys::signal::raise(Signal::SIGKILL);
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_parent: Pid) {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// A child whose parent is not the one it was forked by (the parent died
    /// before the `prctl`) kills itself; one whose parent lives runs on.
    #[test]
    fn a_daemon_whose_parent_is_already_gone_dies() {
        let not_our_parent = Pid::from_raw(i32::MAX);
        // SAFETY: the child calls prctl, getppid and kill, async-signal-safe.
        let mut orphaned = unsafe {
            fork(move || {
                die_with_parent(not_our_parent);
                0
            })
        }
        .unwrap();
        let status = orphaned.wait_deadline(Duration::from_secs(10)).unwrap();
        assert_eq!(
            status,
            ExitStatus::Signaled {
                signal: libc::SIGKILL,
                core: false
            }
        );
        let parent = nix::unistd::getpid();
        // SAFETY: as above.
        let mut adopted = unsafe {
            fork(move || {
                die_with_parent(parent);
                0
            })
        }
        .unwrap();
        assert!(
            adopted
                .wait_deadline(Duration::from_secs(10))
                .unwrap()
                .success()
        );
    }
}
