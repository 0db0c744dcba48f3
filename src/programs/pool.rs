//! The Pool program of CATALOGUE.md section 2 (`pool-async`), `pi-pool`
//! (section 7), and the CSP program of section 6 (`csp-parallel`).

use super::{Program, require_single_thread, sleep};
use crate::csp::Parallel;
use crate::error::{Error, Result};
use crate::pi;
use crate::pool::{Pool, PoolConfig};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The programs of this section.
pub const PROGRAMS: &[Program] = &[
    Program {
        id: "pool-async",
        summary: "a pool of 4 runs 4 sleeping tasks in parallel (apply_async, close, join)",
        run: pool_async,
    },
    Program {
        id: "pi-pool",
        summary: "pi: a pool of workers maps the ten slices to partial sums",
        run: pi_pool,
    },
    Program {
        id: "csp-parallel",
        summary: "Parallel(P1(), P2()) returns when both processes have ended",
        run: csp_parallel,
    },
];

/// The task of `pool-async`: sleep 2 s (scaled), say hello, return when it
/// started and when it finished (seconds since the epoch).
fn hello(i: u32) -> (f64, f64) {
    let started = now();
    sleep(2.0);
    println!("Hello {i}");
    (started, now())
}

/// Seconds since the epoch.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `pool-async`: `pool = Pool(processes=4)`; four `apply_async(hello, (i,))`;
/// `close()`; `join()`; every `get()` returns when the task ran. Tasks that
/// ran one after another (no two of them at once) are an error: the pool
/// did not run them in parallel.
fn pool_async(_args: &[String]) -> Result<i32> {
    require_single_thread()?;
    let since = now();
    // SAFETY: single-threaded (checked above) for the pool's whole life.
    let pool = unsafe { Pool::new(PoolConfig::new(4)) }?;
    let results = (0..4)
        .map(|i| pool.apply_async(hello, i))
        .collect::<Result<Vec<_>>>()?;
    pool.close();
    if pool.apply_async(hello, 4).is_ok() {
        return Err(Error::Protocol(
            "the pool accepted a task after close()".into(),
        ));
    }
    pool.join()?;
    let mut ran = Vec::new();
    for r in results {
        let (started, finished) = r.get(Duration::from_secs(5))?;
        if started < since {
            return Err(Error::Protocol(format!(
                "a task started at {started}, before the pool started"
            )));
        }
        ran.push((started, finished));
    }
    if !any_two_overlap(&ran) {
        return Err(Error::Protocol(format!(
            "the tasks ran one after another ({ran:?}): a pool of 4 runs them at once"
        )));
    }
    Ok(0)
}

/// True when two of the `(start, finish)` intervals overlap: two tasks ran
/// at the same time. Intervals that only touch (one ends as the next
/// begins) ran one after the other.
fn any_two_overlap(ran: &[(f64, f64)]) -> bool {
    let overlap = |(a, b): &(f64, f64), (c, d): &(f64, f64)| a < d && c < b;
    ran.iter()
        .enumerate()
        .any(|(i, x)| ran[i + 1..].iter().any(|y| overlap(x, y)))
}

/// The task of `pi-pool`: the partial sum of slice `i` of `n`.
fn slice_sum(i: u64, n: u64) -> f64 {
    pi::partial_sum(pi::slice(i, n))
}

/// `pi-pool`: `pool.starmap(slice_sum, [(i, n) for i in range(10)])`, summed in order.
fn pi_pool(args: &[String]) -> Result<i32> {
    let n = pi::parse_n(args)?;
    require_single_thread()?;
    // SAFETY: single-threaded (checked above) for the pool's whole life.
    let pool = unsafe { Pool::new(PoolConfig::new(4)) }?;
    let sums = pool.starmap(slice_sum, (0..pi::PARTS).map(|i| (i, n)).collect(), 1)?;
    pool.close();
    pool.join()?;
    pi::print_answer(pi::pi_from(sums.iter().sum()));
    Ok(0)
}

/// A CSP process that sleeps 1 s (scaled) and says it is exiting.
fn exiting(name: &'static str) -> impl FnOnce() {
    move || {
        sleep(1.0);
        println!("{name} exiting");
    }
}

/// `csp-parallel`: `Parallel(P1(), P2())`, then `Terminating`.
fn csp_parallel(_args: &[String]) -> Result<i32> {
    require_single_thread()?;
    let parallel = Parallel::new().with(exiting("P1")).with(exiting("P2"));
    // SAFETY: single-threaded (checked above), so the processes may print.
    let statuses = unsafe { parallel.run(Duration::from_secs(60)) }?;
    if let Some(bad) = statuses.iter().find(|s| !s.success()) {
        return Err(Error::Died(format!("a CSP process {bad}")));
    }
    println!("Terminating");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::any_two_overlap;

    #[test]
    fn intervals_overlap_only_when_two_tasks_ran_at_once() {
        assert!(!any_two_overlap(&[]));
        assert!(!any_two_overlap(&[(0.0, 1.0)]));
        // One after another, also end to end.
        assert!(!any_two_overlap(&[(0.0, 1.0), (1.0, 2.0), (2.5, 3.0)]));
        assert!(!any_two_overlap(&[(2.5, 3.0), (1.0, 2.0), (0.0, 1.0)]));
        // Two overlap, in either order, or one inside another.
        assert!(any_two_overlap(&[(0.0, 1.0), (1.5, 2.5), (2.0, 3.0)]));
        assert!(any_two_overlap(&[(2.0, 3.0), (0.0, 1.0), (1.5, 2.5)]));
        assert!(any_two_overlap(&[(0.0, 4.0), (5.0, 6.0), (1.0, 2.0)]));
    }
}
