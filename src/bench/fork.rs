//! `fork-wait`: one `fork(2)` whose child exits at once, and the
//! `waitpid(2)` that reaps it. The kit's [`crate::process::fork`] +
//! [`ChildGuard::wait`](crate::process::ChildGuard::wait), the bare calls from
//! Rust, a C program (`benches/c/fork_wait.c`) and Python's `os.fork` +
//! `os.waitpid`. The child inherits the parent's CPUs, so the placements are
//! the scheduler's and one core.

use super::{Bench, Ctx, Placement, Python, Unit, Where, pin_maybe, place_cpus};
use crate::error::{Error, Result};
use std::time::Instant;

/// `fork-wait`.
pub const FORK_WAIT: Bench = Bench {
    name: "fork-wait",
    op: "fork a child that exits at once, and wait for it",
    unit: Unit::Micros,
    ops: 1_000,
    places: &[None, Some(Placement::SameCore)],
    sides: &[("ipckit", kit), ("raw", raw), ("c", c)],
    python: Python::Peer,
};

/// Seconds per `op` over `n` calls, pinned where the placement says.
fn timed(place: Where, n: u64, mut op: impl FnMut() -> Result<()>) -> Result<f64> {
    let _pin = pin_maybe(place_cpus(place).0)?;
    let start = Instant::now();
    for _ in 0..n {
        op()?;
    }
    Ok(start.elapsed().as_secs_f64() / n as f64)
}

fn kit(_: &Ctx, place: Where, n: u64) -> Result<f64> {
    timed(place, n, || {
        // SAFETY: benchmarks run in a single-threaded process (`bench::run` checks).
        let mut child = unsafe { crate::process::fork(|| 0) }?;
        super::check_child("forked child", child.wait()?)
    })
}

fn raw(_: &Ctx, place: Where, n: u64) -> Result<f64> {
    timed(place, n, || {
        // SAFETY: a single-threaded process; the child only calls `_exit`.
        match unsafe { libc::fork() } {
            -1 => Err(Error::io("fork", std::io::Error::last_os_error())),
            // SAFETY: `_exit` is async-signal-safe and ends the child here.
            0 => unsafe { libc::_exit(0) },
            pid => {
                let mut status = 0;
                // SAFETY: waiting for our own child, with a valid status pointer.
                if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
                    return Err(Error::io("waitpid", std::io::Error::last_os_error()));
                }
                Ok(())
            }
        }
    })
}

fn c(ctx: &Ctx, place: Where, n: u64) -> Result<f64> {
    let program = ctx
        .native
        .c_program("fork_wait")?
        .to_string_lossy()
        .into_owned();
    // The program inherits this process's CPUs.
    let _pin = pin_maybe(place_cpus(place).0)?;
    super::native::program_number(&[&program, &n.to_string()])
}
