//! The suite for a port of `multiprocessing.Pool` (CATALOGUE.md section 2,
//! `pool-async`).
//!
//! Implement [`PoolPort`] and call [`check`] or
//! `ipckit::conformance_tests!(pool, MyPool)`. Each check uses the pool
//! in one forked child of the check runner (the pool's owner). The checks:
//! - `apply_async_get_returns_the_value`: `apply_async(square, 7).get(10 s)`
//!   is 49.
//! - `get_timeout_on_a_slow_task`: for a task sleeping 1.5 s, `get(250 ms)`
//!   fails with [`Error::Timeout`] after about 250 ms; a later `get(10 s)`
//!   returns the value.
//! - `map_equals_a_sequential_map`: `map(square, 0..200)` equals the
//!   sequential map, in order.
//! - `a_killed_worker_does_not_hang_the_pool`: one idle worker is killed
//!   (`SIGKILL`); `map(square, 0..20)` then returns the right result or a
//!   clear error within 10 s, never hangs.
//! - `close_and_join_reap_every_worker`: after `close` and `join`, no
//!   worker process is left.
//!
//! [`Error::Timeout`]: crate::Error::Timeout

use super::{
    Entry, Expect, LONG_TIMEOUT, Report, Verdict, deadline, expect_error, show, spawn, timed,
};
use crate::audit::Scope;
use crate::error::Result;
use std::time::Duration;

/// A port of `multiprocessing.Pool(processes)` running `fn(u64) -> u64`
/// tasks.
///
/// # Contract
/// - The pool lives in one process: the suite makes and uses it in one
///   forked child of a multi-threaded process (see [`super`]); `new` forks
///   the workers. Tasks are plain functions of the suite.
/// - `Pending::get` fails with [`Error::Timeout`](crate::Error::Timeout)
///   when its timeout passes; the task keeps running and `get` may be
///   called again.
/// - `join` (after `close`) waits for and reaps every worker; dropping the
///   pool must not leave a worker running either.
pub trait PoolPort: Sized {
    /// What `apply_async` returns (Python's `AsyncResult`).
    type Pending;
    /// `Pool(processes)`.
    fn new(processes: usize) -> Result<Self>;
    /// `apply_async(f, (x,))`.
    fn apply_async(&self, f: fn(u64) -> u64, x: u64) -> Result<Self::Pending>;
    /// `result.get(timeout)`.
    fn get(&self, pending: &Self::Pending, timeout: Duration) -> Result<u64>;
    /// `map(f, items)`.
    fn map(&self, f: fn(u64) -> u64, items: Vec<u64>) -> Result<Vec<u64>>;
    /// The pids of the worker processes now.
    fn worker_pids(&self) -> Vec<i32>;
    /// `close()` then `join()`.
    fn close_and_join(&self) -> Result<()>;
}

/// Every check of the suite against `P`, not yet run, in order.
pub fn checks<P: PoolPort + 'static>() -> Vec<Entry> {
    vec![
        Entry::required(
            "apply_async_get_returns_the_value",
            "apply_async(square, 7).get() is 49",
            apply::<P>,
        ),
        Entry::required(
            "get_timeout_on_a_slow_task",
            "get(timeout) on a slower task fails with Error::Timeout after the timeout; a later get returns the value",
            get_timeout::<P>,
        ),
        Entry::required(
            "map_equals_a_sequential_map",
            "map(f, items) equals [f(x) for x in items]",
            map::<P>,
        ),
        Entry::required(
            "a_killed_worker_does_not_hang_the_pool",
            "after a worker is killed, map returns (a result or an error) instead of hanging",
            killed_worker::<P>,
        ),
        Entry::required(
            "close_and_join_reap_every_worker",
            "after close and join no worker process is left",
            close_join::<P>,
        ),
    ]
}

/// Runs every check of the suite against `P`.
pub fn check<P: PoolPort + 'static>() -> std::result::Result<Report, Report> {
    super::check_all("pool", checks::<P>())
}

/// Runs the one check `name` against `P` (the body of each test
/// [`conformance_tests!`](crate::conformance_tests) makes).
pub fn test<P: PoolPort + 'static>(name: &str) {
    super::run_one("pool", checks::<P>(), name)
}

fn square(x: u64) -> u64 {
    x * x
}

fn slow_square(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(1500));
    x * x
}

/// Runs `work` with a new pool of 2 in one child, then closes and joins it.
fn with_pool<P: PoolPort>(scope: &mut Scope, work: impl FnOnce(&P) -> Verdict) -> Verdict {
    spawn(scope, "pool's owner", || {
        let pool = P::new(2).map_err(|e| format!("Pool(2) failed: {e}"))?;
        let seen = work(&pool)?;
        pool.close_and_join()
            .map_err(|e| format!("close and join failed: {e}"))?;
        Ok(seen)
    })?
    .finish(deadline())
}

fn apply<P: PoolPort>(scope: &mut Scope) -> Verdict {
    with_pool::<P>(scope, |pool| {
        let pending = pool
            .apply_async(square, 7)
            .map_err(|e| format!("apply_async failed: {e}"))?;
        match pool.get(&pending, LONG_TIMEOUT) {
            Ok(49) => Ok("apply_async(square, 7).get() returned 49".into()),
            other => Err(format!(
                "apply_async(square, 7).get() gave {}",
                show(&other)
            )),
        }
    })
}

fn get_timeout<P: PoolPort>(scope: &mut Scope) -> Verdict {
    with_pool::<P>(scope, |pool| {
        let pending = pool
            .apply_async(slow_square, 5)
            .map_err(|e| format!("apply_async failed: {e}"))?;
        let t = Duration::from_millis(250);
        let op = timed(|| pool.get(&pending, t));
        let early = expect_error(
            "get(250ms) on a task taking 1.5 s",
            Expect::Timeout,
            op,
            Some(t),
        )?;
        match pool.get(&pending, LONG_TIMEOUT) {
            Ok(25) => Ok(format!("{early}; a later get returned 25")),
            other => Err(format!("{early}; but the later get gave {}", show(&other))),
        }
    })
}

fn map<P: PoolPort>(scope: &mut Scope) -> Verdict {
    with_pool::<P>(scope, |pool| {
        let items: Vec<u64> = (0..200).collect();
        let want: Vec<u64> = items.iter().map(|&x| square(x)).collect();
        match pool.map(square, items) {
            Ok(got) if got == want => Ok("map(square, 0..200) equals the sequential map".into()),
            other => Err(format!("map(square, 0..200) gave {}", show(&other))),
        }
    })
}

fn killed_worker<P: PoolPort>(scope: &mut Scope) -> Verdict {
    with_pool::<P>(scope, |pool| {
        let Some(&victim) = pool.worker_pids().first() else {
            return Err("worker_pids() was empty".into());
        };
        let pid = nix::unistd::Pid::from_raw(victim);
        crate::process::send_signal(pid, nix::sys::signal::Signal::SIGKILL)
            .map_err(|e| e.to_string())?;
        let want: Vec<u64> = (0..20).map(square).collect();
        match timed(|| pool.map(square, (0..20).collect())) {
            (Ok(got), took) if got == want => Ok(format!(
                "after worker {victim} was killed, map returned the right result in {took:.1?}"
            )),
            (Ok(got), _) => Err(format!(
                "after worker {victim} was killed, map returned {got:?}, expected {want:?}"
            )),
            (Err(e), took) => Ok(format!(
                "after worker {victim} was killed, map failed clearly in {took:.1?}: {e}"
            )),
        }
    })
}

fn close_join<P: PoolPort>(scope: &mut Scope) -> Verdict {
    spawn(scope, "pool's owner", || {
        let pool = P::new(2).map_err(|e| format!("Pool(2) failed: {e}"))?;
        let pids = pool.worker_pids();
        pool.close_and_join()
            .map_err(|e| format!("close and join failed: {e}"))?;
        let left: Vec<i32> = pids
            .iter()
            .copied()
            .filter(|&p| nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None).is_ok())
            .collect();
        match left.is_empty() {
            true if !pids.is_empty() => Ok(format!("workers {pids:?} were all reaped by join")),
            true => Err("worker_pids() was empty".into()),
            false => Err(format!(
                "after close and join, workers {left:?} still exist"
            )),
        }
    })?
    .finish(deadline())
}
