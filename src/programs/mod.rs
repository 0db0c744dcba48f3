//! The reference program of every exercise (`ipckit run ID [ARGS]`).
//!
//! Each section of CATALOGUE.md has one file here, and each program in it
//! follows its tutorial step by step. Programs run in the single-threaded
//! `ipckit` process, so their forked children may print and allocate freely.
//! Sleeps of the tutorials are scaled down by [`scaled`]; the order of events
//! they force is kept.

use crate::error::{Error, Result};
use crate::process::{ChildGuard, Fork, Process};
use std::time::Duration;

pub mod channel;
pub mod internal;
pub mod manager;
pub mod mq;
pub mod pool;
pub mod process;
pub mod queue;
pub mod shm;

/// One reference program.
pub struct Program {
    /// The exercise ID from CATALOGUE.md.
    pub id: &'static str,
    /// One line on what it shows.
    pub summary: &'static str,
    /// Runs it with the command-line arguments after the ID; returns the exit code.
    pub run: fn(&[String]) -> Result<i32>,
}

/// Every section's programs, in catalogue order.
const SECTIONS: &[&[Program]] = &[
    process::PROGRAMS,
    pool::PROGRAMS,
    channel::PROGRAMS,
    queue::PROGRAMS,
    mq::PROGRAMS,
    shm::PROGRAMS,
    manager::PROGRAMS,
];

/// Every reference program the kit has, in catalogue order.
pub fn all() -> impl Iterator<Item = &'static Program> {
    SECTIONS.iter().flat_map(|s| s.iter())
}

/// The program for an exercise ID.
pub fn find(id: &str) -> Option<&'static Program> {
    all().find(|p| p.id == id)
}

/// A tutorial's sleep, scaled down: one tutorial second is 100 ms here.
pub fn scaled(tutorial_seconds: f64) -> Duration {
    Duration::from_secs_f64(tutorial_seconds * 0.1)
}

/// Sleeps for a scaled tutorial duration.
pub fn sleep(tutorial_seconds: f64) {
    std::thread::sleep(scaled(tutorial_seconds));
}

pub use crate::process::require_single_thread;

// ---------------------------------------------------------------------------
// A safe fork for single-threaded programs.
//
// `fork(2)` is unsafe in general because a child of a multi-threaded process
// may only call async-signal-safe functions (see `crate::process::fork`). A
// reference program runs alone in the single-threaded `ipckit` process, so
// its children may print and allocate. The functions below check that at the
// moment of each fork (`/proc/self/task`): with one thread, no other thread
// can start between the check and the fork, so the check cannot go stale.
// From a multi-threaded process they return an error instead.
// (Where there is no `/proc`, macOS, the check passes: there the kit relies on
// `ipckit run` being single-threaded, which it is.)

/// `fork(2)`, safe in a single-threaded process: `Fork::Child` in the child,
/// `Fork::Parent(guard)` in the parent. An error if this process has threads.
pub fn fork_raw() -> Result<Fork> {
    require_single_thread()?;
    // SAFETY: this process has one thread (checked just above, and only this
    // thread could have started another since), so the child inherits no
    // lock held by a thread that does not exist in it.
    let forked = unsafe { nix::unistd::fork() };
    match crate::sys::nix("fork", "", forked)? {
        nix::unistd::ForkResult::Child => Ok(Fork::Child),
        nix::unistd::ForkResult::Parent { child } => Ok(Fork::Parent(ChildGuard::adopt(child))),
    }
}

/// `fork(2)` with the child's work as a closure, safe in a single-threaded
/// process: the child runs `child` and exits with its result (`_exit(2)`, 1 on
/// a panic), so it never runs the parent's code.
pub fn fork(child: impl FnOnce() -> i32) -> Result<ChildGuard> {
    match fork_raw()? {
        Fork::Child => {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(1);
            crate::process::exit_immediately(code)
        }
        Fork::Parent(guard) => Ok(guard),
    }
}

/// `p.start()` (`fork(2)`), safe in a single-threaded process.
pub fn start_process(p: &mut Process) -> Result<()> {
    require_single_thread()?;
    // SAFETY: single-threaded, as in `fork_raw`.
    unsafe { p.start() }
}

/// [`crate::process::double_fork`], safe in a single-threaded process.
pub fn double_fork(work: impl FnOnce() -> i32) -> Result<crate::process::Orphan> {
    require_single_thread()?;
    // SAFETY: single-threaded, as in `fork_raw`.
    unsafe { crate::process::double_fork(work) }
}

/// `Process(target=...).start()`: a child whose error is printed to standard
/// error and turned into exit status 1.
pub(crate) fn start(target: impl FnOnce() -> Result<()> + 'static) -> Result<Process> {
    let mut p = Process::new(move || {
        if let Err(e) = target() {
            eprintln!("child {}: {e}", crate::process::getpid());
            crate::process::exit_normally(1);
        }
    });
    start_process(&mut p)?;
    Ok(p)
}

/// `p.join()` for every child; a child that failed is an [`Error::Died`].
pub(crate) fn join_all(children: impl IntoIterator<Item = Process>) -> Result<()> {
    for mut p in children {
        p.join(None)?;
        if p.exitcode() != Some(0) {
            return Err(Error::Died(format!(
                "{} ended with exit code {:?}",
                p.name(),
                p.exitcode()
            )));
        }
    }
    Ok(())
}
