//! The suite for a port of `multiprocessing.Lock` (CATALOGUE.md section 5).
//!
//! Implement [`LockPort`] for your lock and call [`check`]. The checks, in the
//! order they run (each in forked children, see [`super`]):
//! - `mutual_exclusion`: 4 forked processes, started together, each add 1 to
//!   a counter in shared memory (`mmap(2)`, `MAP_SHARED | MAP_ANONYMOUS`) 250
//!   times, each read-modify-write under the lock with a `sched_yield(2)` in the middle;
//!   the total is 1000 and no process ever entered while another was inside.
//! - `timeout_while_held`: while one process holds the lock, an `acquire`
//!   with a 200 ms timeout in another fails with [`Error::Timeout`] after
//!   waiting about that long (within [`OP_DEADLINE`](super::OP_DEADLINE));
//!   once the holder drops its guard, the lock can be acquired again.
//! - `timeout_crossing_a_second`: while another process holds the lock, an
//!   `acquire` with each timeout of
//!   [`CROSSING_TIMEOUTS`](super::CROSSING_TIMEOUTS), started just before a
//!   second boundary of each clock (see
//!   [`CROSSING_TIMEOUTS`](super::CROSSING_TIMEOUTS)), fails with
//!   [`Error::Timeout`] after waiting its timeout: this catches a deadline
//!   that forgets to carry nanoseconds into seconds.
//! - `holder_killed` (a noted property, not a requirement): a process holding
//!   the lock is killed (`SIGKILL`); the note says whether the next `acquire`
//!   still succeeds. Python's `Lock` (a POSIX semaphore) does not recover, the
//!   kit's robust mutex does (`pthread_mutexattr_setrobust(3)`).
//!
//! [`Error::Timeout`]: crate::Error::Timeout

use super::{
    Board, Entry, Expect, LONG_TIMEOUT, Report, SHORT_TIMEOUT, Verdict, Watch, all_of, deadline,
    expect_error, expect_timeouts, finish_all, setup, spawn, timed,
};
use crate::audit::Scope;
use crate::error::Result;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A port of `multiprocessing.Lock` shared by related processes: made before
/// `fork(2)`, acquired and released by parent and children.
///
/// # Contract
/// - The lock is made in one process and inherited by `fork(2)`; every
///   method is called in forked children of a multi-threaded process (see
///   [`super`] for what that allows).
/// - Every timeout the suite passes is `Some`; `None` means wait forever.
///   [`Error::Timeout`](crate::Error::Timeout) can be made with
///   [`Error::timeout`](crate::Error::timeout): the suite looks at the kind only.
/// - A child ends with `_exit(2)`: its copy of the lock is not dropped; a
///   guard is dropped in the child that acquired it, except in
///   `holder_killed`, where the holder is killed holding it. The lock itself
///   is dropped once, in the process that called `new`, and must remove
///   every named object it made (a named semaphore, say).
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
pub fn check<P: LockPort + 'static>() -> std::result::Result<Report, Report> {
    super::check_all("lock", checks::<P>())
}

/// Every check of the suite against `P`, not yet run, in order.
pub fn checks<P: LockPort + 'static>() -> Vec<Entry> {
    vec![
        Entry::required(
            "mutual_exclusion",
            "never two holders at once: increments under the lock from several processes all count",
            mutual_exclusion::<P>,
        ),
        Entry::required(
            "timeout_while_held",
            "acquire while another process holds the lock fails with Error::Timeout after its timeout; the lock works once released",
            timeout_while_held::<P>,
        ),
        Entry::required(
            "timeout_crossing_a_second",
            "acquire of a held lock waits its whole timeout, also when the deadline crosses a second boundary",
            timeout_crossing::<P>,
        ),
        Entry::noted(
            "holder_killed",
            "(a property) whether the lock can be acquired after its holder was killed",
            holder_killed::<P>,
        ),
    ]
}

/// Runs the one check `name` against `P`, panicking with what was expected
/// and what was seen if it fails: the body of each test
/// [`conformance_tests!`](crate::conformance_tests) makes.
pub fn test<P: LockPort + 'static>(name: &str) {
    super::run_one("lock", checks::<P>(), name)
}

/// Slots of the `mutual_exclusion` board.
const COUNTER: usize = 0;
const INSIDE: usize = 1;
const OVERLAPS: usize = 2;
const STARTED: usize = 3;

fn mutual_exclusion<P: LockPort>(scope: &mut Scope) -> Verdict {
    let (lock, board, by) = fresh::<P>(4)?;
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
/// only add up if the lock keeps everyone else out in between. The workers
/// start together (a barrier on `STARTED`): a worker that ran all its rounds
/// before the next one was forked would let a lock that does nothing pass.
fn increment<P: LockPort>(lock: &P, board: &Board) -> Verdict {
    board.at(STARTED).fetch_add(1, Ordering::SeqCst);
    let by = Instant::now() + LONG_TIMEOUT;
    while board.get(STARTED) < WORKERS {
        if Instant::now() > by {
            return Err(format!(
                "the other workers did not start within {LONG_TIMEOUT:?}"
            ));
        }
        std::thread::yield_now();
    }
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
    let mut holder = spawn(scope, "holder", || hold_until_told(&lock, &board))?;
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

fn timeout_crossing<P: LockPort>(scope: &mut Scope) -> Verdict {
    let (lock, board, by) = fresh::<P>(2)?;
    let mut holder = spawn(scope, "holder", || hold_until_told(&lock, &board))?;
    holder.wait_for_slot(&board, HELD, by)?;
    let watch = Watch::new()?;
    let refused = spawn(scope, "second process", || {
        let what = "acquire while another process held the lock";
        expect_timeouts(&watch, what, Expect::Timeout, |t| {
            lock.acquire(Some(t)).map(|_guard| ())
        })
    })?
    .finish_watched(&watch, by);
    board.set(RELEASE, 1);
    all_of([refused, holder.finish(by)])
}

/// A holder's work: acquires, says so, and releases when told.
fn hold_until_told<P: LockPort>(lock: &P, board: &Board) -> Verdict {
    let guard = acquire_free(lock)?;
    board.set(HELD, 1);
    let told = board.wait_for(RELEASE, super::CHECK_DEADLINE);
    drop(guard);
    if told {
        Ok(String::new())
    } else {
        Err("never told to release".into())
    }
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
