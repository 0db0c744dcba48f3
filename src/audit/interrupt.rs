//! Interrupts (`SIGINT`, `SIGTERM`, `SIGHUP`) during `ipckit grade` or
//! `ipckit audit`, and protection of the grader from the code it runs.
//!
//! [`install`] sets a handler (`sigaction(2)`) that only records the signal
//! and passes it on to the helper processes [`register`]ed (the grader's
//! supervisors, the PID 1 of an audit's own PID namespace): both are
//! async-signal-safe. The loops that watch a
//! tree poll [`interrupted`] on every pass; on an interrupt they kill the
//! whole tree, remove what it made and end with a report of what was done so
//! far, instead of dying and leaving it all behind.
//!
//! [`not_dumpable`] is `prctl(PR_SET_DUMPABLE, 0)`: a process that is not
//! dumpable cannot be `PTRACE_ATTACH`ed by a process without
//! `CAP_SYS_PTRACE`, nor its memory read through `/proc`.

use std::sync::atomic::{AtomicI32, Ordering};

/// The signal that interrupted the run (0: none yet).
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);

/// Helper processes to pass an interrupt on to (0: a free slot).
static HELPERS: [AtomicI32; 64] = [const { AtomicI32::new(0) }; 64];

extern "C" fn on_signal(sig: libc::c_int) {
    INTERRUPTED.store(sig, Ordering::SeqCst);
    for slot in &HELPERS {
        let pid = slot.load(Ordering::SeqCst);
        if pid > 0 {
            // SAFETY: kill is async-signal-safe; pid is a helper we started.
            unsafe { libc::kill(pid, sig) };
        }
    }
}

/// Installs the interrupt handler for `SIGINT`, `SIGTERM` and `SIGHUP`
/// (`sigaction(2)`, `SA_RESTART`). Child processes get their default
/// actions back at `exec`, as for any caught signal.
pub fn install() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: an all-zero `sigaction` is a valid value of this C struct.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = on_signal as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        // SAFETY: `sa.sa_mask` is a valid, writable `sigset_t`.
        unsafe { libc::sigemptyset(&mut sa.sa_mask) };
        // SAFETY: `sa` is initialised; the handler only stores to atomics and
        // calls kill, both async-signal-safe.
        unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) };
    }
}

/// The signal that interrupted the run, if one did.
pub fn interrupted() -> Option<i32> {
    match INTERRUPTED.load(Ordering::SeqCst) {
        0 => None,
        sig => Some(sig),
    }
}

/// Records an interrupt by hand (a supervisor that read it from its
/// `signalfd(2)`), so that [`interrupted`] reports it.
pub fn record(sig: i32) {
    INTERRUPTED.store(sig, Ordering::SeqCst);
}

/// The name of a signal number, for reports (`SIGINT`).
pub fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {sig}"))
}

/// A helper process that gets the interrupting signal (`SIGINT`, `SIGTERM`,
/// `SIGHUP`) when the run is interrupted, for as long as this registration
/// lives.
pub struct Registration {
    slot: Option<usize>,
}

/// Registers `pid` (a helper this process started) for interrupts. When
/// the run was already interrupted, the helper is told at once.
pub fn register(pid: i32) -> Registration {
    let slot = HELPERS.iter().position(|s| {
        s.compare_exchange(0, pid, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    });
    if let Some(sig) = interrupted().and_then(|s| nix::sys::signal::Signal::try_from(s).ok()) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
    }
    Registration { slot }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            HELPERS[i].store(0, Ordering::SeqCst);
        }
    }
}

/// `prctl(PR_SET_DUMPABLE, 0)`: nothing without `CAP_SYS_PTRACE` can attach
/// to this process or read its memory (`prctl(2)`). Reset to 1 by `execve`.
pub fn not_dumpable() {
    // SAFETY: PR_SET_DUMPABLE takes a plain integer.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong) };
}
