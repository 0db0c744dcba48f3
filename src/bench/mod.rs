//! Side-by-side benchmarks (`ipckit bench`, `cargo bench`).
//!
//! Each benchmark runs the kit's mechanism, a baseline written directly on raw
//! system calls, and the Python equivalent (a peer script in
//! `fixtures/peers/`), in one run on the same machine, and reports medians and
//! ratios: these machines are noisy 2-core VMs, so absolute numbers mean
//! little and side-by-side ratios a lot.
//!
//! Benchmarks fork, so they run in a single-threaded process (the `ipckit`
//! binary or a `harness = false` bench binary).

pub mod manager_pool;
pub mod queue;

use crate::error::{Error, Result};
use std::time::Duration;

/// Where the two processes of a ping-pong run (`sched_setaffinity(2)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Both on CPU 0: every wake-up is a context switch on one core.
    SameCore,
    /// Parent on CPU 0, child on CPU 1: every wake-up crosses cores.
    CrossCore,
}

impl Placement {
    /// Both placements, in the order tables show them.
    pub const ALL: [Placement; 2] = [Placement::SameCore, Placement::CrossCore];

    /// The CPUs for (parent, child).
    pub fn cpus(self) -> (usize, usize) {
        match self {
            Placement::SameCore => (0, 0),
            Placement::CrossCore => (0, 1),
        }
    }

    /// A short label for tables and peer scripts.
    pub fn label(self) -> &'static str {
        match self {
            Placement::SameCore => "same-core",
            Placement::CrossCore => "cross-core",
        }
    }
}

/// Pins the calling process to one CPU (`sched_setaffinity(2)`) until the
/// returned guard is dropped, which restores the CPUs it was allowed before
/// (children forked meanwhile inherit the pin, so a later benchmark must not).
/// A no-op where the call does not exist (macOS).
pub fn pin_to(cpu: usize) -> Result<Pinned> {
    #[cfg(target_os = "linux")]
    {
        use nix::sched::{sched_getaffinity, sched_setaffinity};
        let me = nix::unistd::Pid::from_raw(0);
        let before = crate::sys::nix("sched_getaffinity", "this process", sched_getaffinity(me))?;
        let set = cpu_set(cpu)?;
        crate::sys::nix("sched_setaffinity", cpu, sched_setaffinity(me, &set))?;
        Ok(Pinned { before })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = cpu;
        Ok(Pinned {})
    }
}

/// Pins every thread of another process to one CPU: `sched_setaffinity(2)`
/// on each thread id listed in `/proc/PID/task` (threads it starts later
/// inherit the mask of the thread that starts them). A no-op on macOS.
pub fn pin_process(pid: i32, cpu: usize) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        let set = cpu_set(cpu)?;
        let dir = format!("/proc/{pid}/task");
        let tasks = std::fs::read_dir(&dir).map_err(|e| Error::io(dir, e))?;
        for tid in tasks.flatten() {
            if let Ok(tid) = tid.file_name().to_string_lossy().parse::<i32>() {
                let tid = nix::unistd::Pid::from_raw(tid);
                crate::sys::nix(
                    "sched_setaffinity",
                    tid,
                    nix::sched::sched_setaffinity(tid, &set),
                )?;
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (pid, cpu);
    Ok(())
}

/// The set holding just `cpu`.
#[cfg(target_os = "linux")]
fn cpu_set(cpu: usize) -> Result<nix::sched::CpuSet> {
    let mut set = nix::sched::CpuSet::new();
    crate::sys::nix("sched_setaffinity", cpu, set.set(cpu))?;
    Ok(set)
}

/// Forks a child pinned to `cpu` that runs `work` (its exit code); 2 if
/// the pin fails.
pub fn pinned_child(cpu: usize, work: impl FnOnce() -> i32) -> Result<crate::process::ChildGuard> {
    // SAFETY: benchmarks run in a single-threaded process (each `run` checks).
    unsafe {
        crate::process::fork(move || {
            // The child stays pinned until it exits.
            let Ok(_pinned) = pin_to(cpu) else { return 2 };
            work()
        })
    }
}

/// The CPUs a process was allowed before [`pin_to`]; restored on drop.
pub struct Pinned {
    #[cfg(target_os = "linux")]
    before: nix::sched::CpuSet,
}

impl Drop for Pinned {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &self.before);
    }
}

/// The median of some measurements (sorted in place).
pub fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    match samples.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => samples[n / 2],
        n => (samples[n / 2 - 1] + samples[n / 2]) / 2.0,
    }
}

/// Runs `measure` `runs` times and returns the median.
pub fn median_of(runs: usize, mut measure: impl FnMut() -> Result<f64>) -> Result<f64> {
    let mut samples = (0..runs).map(|_| measure()).collect::<Result<Vec<f64>>>()?;
    Ok(median(&mut samples))
}

/// Runs a Python peer script from `fixtures/peers/` with arguments and
/// returns what it printed. `Err` (with the reason) when python3 or the script
/// is missing or fails, so a table can say so instead of failing.
pub fn python_peer_output(
    script: &str,
    args: &[String],
    timeout: Duration,
) -> std::result::Result<String, String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/peers")
        .join(script);
    let mut child = std::process::Command::new("python3")
        .arg(&path)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("python3 not runnable: {e}"))?;
    let mut out = String::new();
    // The peers print one short line at the end, so reading to the end before
    // waiting cannot fill the pipe; a peer that hangs is killed by the deadline.
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let reader = child.stdout.take().expect("piped");
    let status = crate::process::ChildGuard::adopt(pid)
        .wait_deadline(timeout)
        .map_err(|e| format!("{script}: {e}"))?;
    std::io::Read::read_to_string(&mut { reader }, &mut out).map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("{script} {status}"));
    }
    Ok(out)
}

/// Like [`python_peer_output`], for a peer that prints one number.
pub fn python_peer(
    script: &str,
    args: &[String],
    timeout: Duration,
) -> std::result::Result<f64, String> {
    let out = python_peer_output(script, args, timeout)?;
    out.trim()
        .parse()
        .map_err(|_| format!("{script} printed {out:?}"))
}

/// Formats a ratio for a table ("1.23x").
pub fn ratio(a: f64, b: f64) -> String {
    format!("{:.2}x", a / b)
}

/// Turns a failed child in a benchmark into an error.
pub(crate) fn check_child(what: &str, status: crate::process::ExitStatus) -> Result<()> {
    if status.success() {
        Ok(())
    } else {
        Err(Error::Died(format!("{what} {status}")))
    }
}
