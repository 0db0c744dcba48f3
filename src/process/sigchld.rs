//! Telling the kernel to reap children for us: `SIGCHLD` set to `SIG_IGN`.
//!
//! POSIX says that when a process ignores `SIGCHLD` explicitly, its children
//! never become zombies: the kernel discards their exit status at once, and a
//! later `wait` finds nothing and fails with `ECHILD` (`sigaction(2)`, NOTES).

use crate::error::Result;
use crate::sys;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

/// While this guard lives, `SIGCHLD` is ignored (`sigaction(2)` with `SIG_IGN`);
/// dropping it restores the disposition that was there before.
///
/// The disposition belongs to the whole process: in a test binary, use it only
/// in a `#[serial]` test in its own test file, or in a child process, because
/// every other thread's children would be reaped automatically too.
pub struct SigchldIgnored {
    old: SigAction,
}

impl SigchldIgnored {
    /// Sets `SIGCHLD` to `SIG_IGN`, remembering the old action.
    pub fn new() -> Result<Self> {
        let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        // SAFETY: installing SIG_IGN runs no code in signal context.
        let old = sys::nix("sigaction", "SIGCHLD", unsafe {
            sigaction(Signal::SIGCHLD, &ignore)
        })?;
        Ok(SigchldIgnored { old })
    }
}

impl Drop for SigchldIgnored {
    fn drop(&mut self) {
        // SAFETY: we put back exactly the action that was installed before.
        let _ = unsafe { sigaction(Signal::SIGCHLD, &self.old) };
    }
}
