//! The suite for a port of `multiprocessing.Semaphore` and
//! `BoundedSemaphore` (CATALOGUE.md section 5, `semaphore`).
//!
//! Implement [`SemaphorePort`] and call [`check`] or
//! `ipckit::conformance_tests!(semaphore, MySemaphore)`. The checks:
//! - `acquire_counts_down_and_blocks_at_zero`: `Semaphore(3)`: three
//!   acquires succeed and `get_value` reads 2, 1, 0; a fourth with a 200 ms
//!   timeout fails with [`Error::Timeout`] after waiting.
//! - `release_wakes_a_waiter_in_another_process`: `Semaphore(1)`: a process
//!   takes the unit and exits; another blocks in `acquire` (seen asleep,
//!   state `S`); a third releases; the blocked one returns.
//! - `at_most_n_holders`: `Semaphore(2)`: 4 processes acquire and release
//!   200 times each, staying inside 1 ms; never more than 2 inside at once.
//! - `acquire_timeout_crossing_a_second`: at 0, `acquire` with each timeout
//!   of [`CROSSING_TIMEOUTS`](super::CROSSING_TIMEOUTS) started just before a
//!   second boundary fails with [`Error::Timeout`] after waiting its timeout.
//! - `bounded_release_above_initial_fails`: for a port that says it is
//!   bounded ([`SemaphorePort::BOUNDED`]), a `release` above the initial
//!   value fails and the value stays; for a counting semaphore it is a NOTE
//!   saying what happened (Python's `Semaphore` allows it).
//!
//! [`Error::Timeout`]: crate::Error::Timeout

use super::{
    Board, Entry, Expect, LONG_TIMEOUT, Report, SHORT_TIMEOUT, Verdict, Watch, all_of, deadline,
    expect_error, expect_timeouts, finish_all, setup, show, spawn, timed, wait_until_asleep,
};
use crate::audit::Scope;
use crate::error::Result;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A port of `multiprocessing.Semaphore(value)` shared by related processes.
///
/// # Contract
/// - Made in one process (`new`) and inherited by `fork(2)`; every method is
///   called in forked children of a multi-threaded process (see [`super`]).
/// - Children end with `_exit(2)` and never drop their copy; the process
///   that called `new` drops it once, and must remove any named object.
/// - Every timeout the suite passes is `Some`; `None` means wait forever.
///   A timed-out acquire is [`Error::Timeout`](crate::Error::Timeout).
pub trait SemaphorePort: Sized {
    /// True for a port of `BoundedSemaphore`: `release` above the initial
    /// value is an error (Python's `ValueError`).
    const BOUNDED: bool = false;

    /// `Semaphore(value)`.
    fn new(value: u32) -> Result<Self>;

    /// `acquire(block=True, timeout)`: takes one unit, waiting while there
    /// is none.
    fn acquire(&self, timeout: Option<Duration>) -> Result<()>;

    /// `release()`: gives one unit back, waking a waiter.
    fn release(&self) -> Result<()>;

    /// `get_value()`: the units left now.
    fn get_value(&self) -> Result<u32>;
}

/// Every check of the suite against `P`, not yet run, in order.
pub fn checks<P: SemaphorePort + 'static>() -> Vec<Entry> {
    let bounded = "a bounded semaphore refuses a release above its initial value";
    let last = if P::BOUNDED {
        Entry::required(
            "bounded_release_above_initial_fails",
            bounded,
            over_release::<P>,
        )
    } else {
        Entry::noted(
            "bounded_release_above_initial_fails",
            bounded,
            over_release::<P>,
        )
    };
    vec![
        Entry::required(
            "acquire_counts_down_and_blocks_at_zero",
            "acquire takes one unit (get_value 2, 1, 0 from 3) and at 0 fails with Error::Timeout after its timeout",
            counts_down::<P>,
        ),
        Entry::required(
            "release_wakes_a_waiter_in_another_process",
            "a release in one process wakes a process blocked in acquire",
            wakes_a_waiter::<P>,
        ),
        Entry::required(
            "at_most_n_holders",
            "a semaphore of 2 never lets more than 2 processes in at once",
            at_most_n::<P>,
        ),
        Entry::required(
            "acquire_timeout_crossing_a_second",
            "acquire at 0 waits its whole timeout, also when the deadline crosses a second boundary",
            crossing::<P>,
        ),
        last,
    ]
}

/// Runs every check of the suite against `P`.
pub fn check<P: SemaphorePort + 'static>() -> std::result::Result<Report, Report> {
    super::check_all("semaphore", checks::<P>())
}

/// Runs the one check `name` against `P` (the body of each test
/// [`conformance_tests!`](crate::conformance_tests) makes).
pub fn test<P: SemaphorePort + 'static>(name: &str) {
    super::run_one("semaphore", checks::<P>(), name)
}

fn counts_down<P: SemaphorePort>(scope: &mut Scope) -> Verdict {
    let sem = setup("new(3)", P::new(3))?;
    spawn(scope, "acquiring process", || {
        for want in [2, 1, 0] {
            sem.acquire(Some(LONG_TIMEOUT))
                .map_err(|e| format!("acquire with {} units left failed: {e}", want + 1))?;
            match sem.get_value() {
                Ok(v) if v == want => {}
                other => return Err(format!("get_value was {}, expected {want}", show(&other))),
            }
        }
        let what = format!("acquire at 0 with a {SHORT_TIMEOUT:?} timeout");
        let op = timed(|| sem.acquire(Some(SHORT_TIMEOUT)));
        let seen = expect_error(&what, Expect::Timeout, op, Some(SHORT_TIMEOUT))?;
        Ok(format!("3 acquires read 2, 1, 0; {seen}"))
    })?
    .finish(deadline())
}

fn wakes_a_waiter<P: SemaphorePort>(scope: &mut Scope) -> Verdict {
    let sem = setup("new(1)", P::new(1))?;
    let by = deadline();
    spawn(scope, "process taking the unit", || {
        let took = sem.acquire(Some(LONG_TIMEOUT));
        took.map(|()| String::new())
            .map_err(|e| format!("acquire of the one unit failed: {e}"))
    })?
    .finish(by)?;
    let waiter = spawn(scope, "waiting process", || {
        let (r, took) = timed(|| sem.acquire(Some(LONG_TIMEOUT)));
        r.map(|()| format!("the waiter returned {took:.1?} after it started waiting"))
            .map_err(|e| format!("acquire failed: {e}"))
    })?;
    wait_until_asleep(&waiter, by)?;
    let releaser = spawn(scope, "releasing process", || {
        sem.release()
            .map(|()| String::new())
            .map_err(|e| format!("release failed: {e}"))
    })?;
    all_of([releaser.finish(by), waiter.finish(by)])
}

/// Processes and rounds in `at_most_n_holders`.
const WORKERS: usize = 4;
const ROUNDS: usize = 200;

fn at_most_n<P: SemaphorePort>(scope: &mut Scope) -> Verdict {
    let sem = setup("new(2)", P::new(2))?;
    let board = Board::new(2)?; // inside now, most ever inside
    let by = deadline();
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        workers.push(spawn(scope, "worker", || {
            for i in 0..ROUNDS {
                sem.acquire(Some(LONG_TIMEOUT))
                    .map_err(|e| format!("acquire {i} failed: {e}"))?;
                let inside = board.at(0).fetch_add(1, Ordering::SeqCst) + 1;
                board.at(1).fetch_max(inside, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(1));
                board.at(0).fetch_sub(1, Ordering::SeqCst);
                sem.release()
                    .map_err(|e| format!("release {i} failed: {e}"))?;
            }
            Ok(String::new())
        })?);
    }
    finish_all(workers, by)?;
    match board.get(1) {
        most if most <= 2 => Ok(format!(
            "{WORKERS} processes x {ROUNDS} acquire/release of Semaphore(2): at most {most} inside at once"
        )),
        most => Err(format!(
            "{most} processes were inside a Semaphore(2) at once"
        )),
    }
}

fn crossing<P: SemaphorePort>(scope: &mut Scope) -> Verdict {
    let sem = setup("new(0)", P::new(0))?;
    let watch = Watch::new()?;
    spawn(scope, "acquiring process", || {
        let what = "acquire at 0";
        expect_timeouts(&watch, what, Expect::Timeout, |t| sem.acquire(Some(t)))
    })?
    .finish_watched(&watch, deadline())
}

fn over_release<P: SemaphorePort>(scope: &mut Scope) -> Verdict {
    let sem = setup("new(1)", P::new(1))?;
    spawn(scope, "releasing process", || {
        let released = sem.release();
        let value = sem.get_value();
        match (P::BOUNDED, &released, &value) {
            (true, Err(_), Ok(1)) => Ok(format!(
                "release above the initial value 1 failed ({}); the value stayed 1",
                show(&released)
            )),
            (true, _, _) => Err(format!(
                "release above the initial value 1 gave {}, and get_value {}",
                show(&released),
                show(&value)
            )),
            (false, _, _) => Ok(format!(
                "a counting semaphore: release above the initial value 1 gave {}, get_value then {}",
                show(&released),
                show(&value)
            )),
        }
    })?
    .finish(deadline())
}
