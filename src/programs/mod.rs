//! The reference program of every exercise (`ipckit run ID [ARGS]`).
//!
//! Each section of CATALOGUE.md has one file here, and each program in it
//! follows its tutorial step by step. Programs run in the single-threaded
//! `ipckit` process, so their forked children may print and allocate freely.
//! Sleeps of the tutorials are scaled down by [`scaled`]; the order of events
//! they force is kept.

use crate::error::{Error, Result};
use crate::process::Process;
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

/// Checks that this process has a single thread, which is what makes it sound
/// for the programs' children to print and allocate after `fork`. Programs call
/// it before their first fork; from a multi-threaded process (a test binary)
/// they refuse to run instead of risking a deadlock in the child.
pub fn require_single_thread() -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        let threads = std::fs::read_dir("/proc/self/task")
            .map(|d| d.count())
            .unwrap_or(1);
        if threads > 1 {
            return Err(crate::Error::invalid(
                "caller",
                format!(
                    "reference programs fork and print, so they must run in a single-threaded process (this one has {threads} threads); run them with `ipckit run ID`"
                ),
            ));
        }
    }
    Ok(())
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
    // SAFETY: every program calls `require_single_thread` first, so the
    // child may print and allocate.
    unsafe { p.start() }?;
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
