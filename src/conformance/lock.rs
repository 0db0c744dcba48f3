//! The suite for a port of `multiprocessing.Lock` (CATALOGUE.md section 5).
//!
//! Implement [`LockPort`] for your lock and call [`check`]. The checks, in the
//! order they run (each in forked children, see [`super`]):
//! - `mutual_exclusion`: 4 forked processes each add 1 to a counter in shared
//!   memory (`mmap(2)`, `MAP_SHARED | MAP_ANONYMOUS`) 250 times, each
//!   read-modify-write under the lock with a `sched_yield(2)` in the middle;
//!   the total is 1000 and no process ever entered while another was inside.
//! - `timeout_while_held`: while one process holds the lock, an `acquire`
//!   with a 200 ms timeout in another fails with [`Error::Timeout`] after
//!   waiting about that long (within [`OP_DEADLINE`](super::OP_DEADLINE));
//!   once the holder drops its guard, the lock can be acquired again.
//! - `holder_killed` (a noted property, not a requirement): a process holding
//!   the lock is killed (`SIGKILL`); the note says whether the next `acquire`
//!   still succeeds. Python's `Lock` (a POSIX semaphore) does not recover, the
//!   kit's robust mutex does (`pthread_mutexattr_setrobust(3)`).
//!
//! [`Error::Timeout`]: crate::Error::Timeout

use super::{
    Board, Expect, LONG_TIMEOUT, Report, SHORT_TIMEOUT, Verdict, all_of, deadline, expect_error,
    finish_all, setup, spawn, timed,
};
use crate::audit::Scope;
use crate::error::Result;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A port of `multiprocessing.Lock` shared by related processes: made before
/// `fork(2)`, acquired and released by parent and children.
///
/// Every method is called in forked children of a multi-threaded process (see
/// [`super`] for what that allows).
pub trait LockPort: Sized {
    /// Proof of holding the lock: `acquire` returns it, dropping it releases
    /// the lock (Python's `with lock:` / `release()`). `()` will do for a port
    /// with a separate release, if its `Drop` releases.
    type Guard<'a>
    where
        Self: 'a;

    /// `Lock()`: a new, free lock.
    fn new() -> Result<Self>;

    /// `acquire(block=True, timeout)`: waits until this process holds the
    /// lock; [`Error::Timeout`](crate::Error::Timeout) when `timeout` passes
    /// first (`None`: wait forever).
    fn acquire(&self, timeout: Option<Duration>) -> Result<Self::Guard<'_>>;
}

/// Processes incrementing the counter in `mutual_exclusion`.
const WORKERS: u64 = 4;
/// Increments each of them makes.
const ROUNDS: u64 = 250;
/// How long `holder_killed` gives the next `acquire`.
const RECOVERY: Duration = Duration::from_secs(1);

/// Runs every check of the suite against `P`: `Ok` if all passed, `Err` with
/// the same report otherwise (so `check::<P>().unwrap()` prints it).
pub fn check<P: LockPort>() -> std::result::Result<Report, Report> {
    let mut report = Report::new("lock");
    report.run("mutual_exclusion", mutual_exclusion::<P>);
    report.run("timeout_while_held", timeout_while_held::<P>);
    report.note("holder_killed", holder_killed::<P>);
    report.into_result()
}

/// Slots of the `mutual_exclusion` board.
const COUNTER: usize = 0;
const INSIDE: usize = 1;
const OVERLAPS: usize = 2;

fn mutual_exclusion<P: LockPort>(scope: &mut Scope) -> Verdict {
    let (lock, board, by) = fresh::<P>(3)?;
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        workers.push(spawn(scope, "incrementing process", || {
            increment(&lock, &board)
        })?);
    }
    finish_all(workers, by)?;
    let (total, overlaps, want) = (board.get(COUNTER), board.get(OVERLAPS), WORKERS * ROUNDS);
    if total == want && overlaps == 0 {
        return Ok(format!(
            "{WORKERS} processes x {ROUNDS} increments of a shared counter under the lock: total {total}, never two holders at once"
        ));
    }
    Err(format!(
        "{WORKERS} processes x {ROUNDS} increments of a shared counter under the lock: total {total}, expected {want} ({} updates lost); {overlaps} times a process got the lock while another held it",
        want.saturating_sub(total)
    ))
}

/// One worker: `ROUNDS` increments, each a read, a yield and a write, which
/// only add up if the lock keeps everyone else out in between.
fn increment<P: LockPort>(lock: &P, board: &Board) -> Verdict {
    for i in 0..ROUNDS {
        let guard = lock
            .acquire(Some(LONG_TIMEOUT))
            .map_err(|e| format!("acquire {i} failed: {e}"))?;
        if board.at(INSIDE).fetch_add(1, Ordering::SeqCst) != 0 {
            board.at(OVERLAPS).fetch_add(1, Ordering::SeqCst);
        }
        let value = board.get(COUNTER);
        std::thread::yield_now();
        board.set(COUNTER, value + 1);
        board.at(INSIDE).fetch_sub(1, Ordering::SeqCst);
        drop(guard);
    }
    Ok(String::new())
}

/// Slots of the holder's board: it holds the lock; it may release it.
const HELD: usize = 0;
const RELEASE: usize = 1;

fn timeout_while_held<P: LockPort>(scope: &mut Scope) -> Verdict {
    let (lock, board, by) = fresh::<P>(2)?;
    let mut holder = spawn(scope, "holder", || {
        let guard = acquire_free(&lock)?;
        board.set(HELD, 1);
        let told = board.wait_for(RELEASE, super::CHECK_DEADLINE);
        drop(guard);
        if told {
            Ok(String::new())
        } else {
            Err("never told to release".into())
        }
    })?;
    holder.wait_for_slot(&board, HELD, by)?;
    let refused = spawn(scope, "second process", || {
        let what =
            format!("acquire with a {SHORT_TIMEOUT:?} timeout while another process held the lock");
        let op = timed(|| lock.acquire(Some(SHORT_TIMEOUT)).map(|_guard| ()));
        expect_error(&what, Expect::Timeout, op, Some(SHORT_TIMEOUT))
    })?
    .finish(by);
    board.set(RELEASE, 1);
    let released = holder.finish(by);
    let again = spawn(scope, "third process", || {
        acquire_free(&lock).map(|_guard| "once released, the lock was acquired again".into())
    })?
    .finish(by);
    all_of([refused, released, again])
}

fn holder_killed<P: LockPort>(scope: &mut Scope) -> Verdict {
    let (lock, board, by) = fresh::<P>(2)?;
    let mut holder = spawn(scope, "holder", || {
        std::mem::forget(acquire_free(&lock)?);
        board.set(HELD, 1);
        board.wait_for(RELEASE, super::CHECK_DEADLINE);
        Err("was never killed".into())
    })?;
    holder.wait_for_slot(&board, HELD, by)?;
    holder.kill()?;
    let next = spawn(scope, "next process", || {
        Ok(
            match timed(|| lock.acquire(Some(RECOVERY)).map(|_guard| ())) {
                (Ok(()), took) => format!(
                    "recovers: after its holder was killed, the next acquire succeeded in {took:.1?}"
                ),
                (Err(e), _) => format!(
                    "does not recover: after its holder was killed, acquire with a {RECOVERY:?} timeout failed (`{e}`), as Python's Lock would block forever"
                ),
            },
        )
    })?;
    next.finish(by)
}

/// What every check starts with: a new lock, a board of `slots` and the
/// check's deadline.
fn fresh<P: LockPort>(slots: usize) -> std::result::Result<(P, Board, Instant), String> {
    Ok((setup("new()", P::new())?, Board::new(slots)?, deadline()))
}

/// In a child: acquires a lock nobody else should hold.
fn acquire_free<P: LockPort>(lock: &P) -> std::result::Result<P::Guard<'_>, String> {
    lock.acquire(Some(LONG_TIMEOUT))
        .map_err(|e| format!("acquire of the free lock failed: {e}"))
}
