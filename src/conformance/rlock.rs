//! The suite for a port of `multiprocessing.RLock` (CATALOGUE.md section 5):
//! every check of the [`lock`] suite, plus re-entrancy.
//!
//! An RLock port implements the same [`LockPort`] trait as a lock (its
//! contract holds as written there); call [`check`] or
//! `ipckit::conformance_tests!(rlock, MyRLock)`. The checks added:
//! - `reentrant_in_one_process`: the process holding the lock acquires it
//!   again (a 200 ms timeout) and succeeds; it is released once both guards
//!   are dropped.
//! - `excludes_others_until_fully_released`: a process acquires twice and
//!   drops one guard; another process's `acquire` with a 200 ms timeout still
//!   fails with [`Error::Timeout`](crate::Error::Timeout); once the first
//!   drops its second guard, the other acquires.

use super::lock::{self, LockPort};
use super::{
    Board, Entry, Expect, LONG_TIMEOUT, Report, SHORT_TIMEOUT, Verdict, all_of, deadline,
    expect_error, setup, spawn, timed,
};
use crate::audit::Scope;

/// Every check of the suite against `P`, not yet run, in order.
pub fn checks<P: LockPort + 'static>() -> Vec<Entry> {
    let mut entries = lock::checks::<P>();
    entries.push(Entry::required(
        "reentrant_in_one_process",
        "the process holding an RLock can acquire it again",
        reentrant::<P>,
    ));
    entries.push(Entry::required(
        "excludes_others_until_fully_released",
        "an RLock acquired twice stays held against other processes until released twice",
        fully_released::<P>,
    ));
    entries
}

/// Runs every check of the suite against `P`.
pub fn check<P: LockPort + 'static>() -> std::result::Result<Report, Report> {
    super::check_all("rlock", checks::<P>())
}

/// Runs the one check `name` against `P` (the body of each test
/// [`conformance_tests!`](crate::conformance_tests) makes).
pub fn test<P: LockPort + 'static>(name: &str) {
    super::run_one("rlock", checks::<P>(), name)
}

fn reentrant<P: LockPort>(scope: &mut Scope) -> Verdict {
    let rlock = setup("new()", P::new())?;
    spawn(scope, "holding process", || {
        let outer = acquire(&rlock, LONG_TIMEOUT, "first")?;
        let inner = acquire(&rlock, SHORT_TIMEOUT, "second, while holding it,")?;
        drop(inner);
        drop(outer);
        acquire(&rlock, SHORT_TIMEOUT, "after both guards were dropped,")?;
        Ok("acquired twice by its holder; free again once both guards were dropped".into())
    })?
    .finish(deadline())
}

/// In a child: acquires within `timeout`, naming the attempt on failure.
fn acquire<'a, P: LockPort>(
    rlock: &'a P,
    timeout: std::time::Duration,
    which: &str,
) -> std::result::Result<P::Guard<'a>, String> {
    rlock
        .acquire(Some(timeout))
        .map_err(|e| format!("the {which} acquire failed: {e}"))
}

/// Board slots: held twice and once released; may release the second.
const HALF: usize = 0;
const FINISH: usize = 1;

fn fully_released<P: LockPort>(scope: &mut Scope) -> Verdict {
    let rlock = setup("new()", P::new())?;
    let board = Board::new(2)?;
    let by = deadline();
    let mut holder = spawn(scope, "holding process", || {
        let outer = acquire(&rlock, LONG_TIMEOUT, "first")?;
        drop(acquire(&rlock, SHORT_TIMEOUT, "second")?);
        board.set(HALF, 1);
        board.wait_for(FINISH, super::CHECK_DEADLINE);
        drop(outer);
        Ok(String::new())
    })?;
    holder.wait_for_slot(&board, HALF, by)?;
    let refused = spawn(scope, "other process", || {
        let what = "acquire while the holder still held one of its two acquisitions";
        let op = timed(|| rlock.acquire(Some(SHORT_TIMEOUT)).map(|_guard| ()));
        expect_error(what, Expect::Timeout, op, Some(SHORT_TIMEOUT))
    })?
    .finish(by);
    board.set(FINISH, 1);
    let released = holder.finish(by);
    let again = spawn(scope, "other process", || {
        acquire(
            &rlock,
            LONG_TIMEOUT,
            "once fully released, the other process's",
        )
        .map(|_guard| "once fully released, another process acquired it".into())
    })?
    .finish(by);
    all_of([refused, released, again])
}
