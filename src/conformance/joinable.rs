//! The suite for a port of `multiprocessing.JoinableQueue` (CATALOGUE.md
//! section 4): `task_done` and `join`.
//!
//! Implement [`JoinableQueuePort`] and call [`check`] or
//! `ipckit::conformance_tests!(joinable, MyQueue)`. The checks:
//! - `join_waits_for_every_task_done`: a producer puts 3 items; a consumer
//!   in another process gets them and calls `task_done` twice; the
//!   producer's `join` with a 200 ms timeout then fails with
//!   [`Error::Timeout`]; after the third `task_done`, `join` returns.
//! - `task_done_more_than_put_is_an_error`: after 1 put, 1 get and 1
//!   `task_done`, a second `task_done` fails (Python's `ValueError`).
//! - `join_on_an_empty_queue_returns_at_once`: `join` on a queue nothing was
//!   put into returns well within its 10 s timeout.
//!
//! [`Error::Timeout`]: crate::Error::Timeout

use super::{
    Board, Entry, Expect, LONG_TIMEOUT, Report, SHORT_TIMEOUT, TIMEOUT_SLACK, Verdict, deadline,
    expect_error, finish_all_or_stop, setup, show, spawn, timed,
};
use crate::audit::Scope;
use crate::error::Result;
use std::time::Duration;

/// A port of `multiprocessing.JoinableQueue` carrying `u64` items.
///
/// # Contract
/// The [`QueuePort`](super::queue::QueuePort) contract (made before `fork`,
/// used in forked children that never drop it, dropped once by its maker,
/// every timeout `Some`), with:
/// - `join` failing with [`Error::Timeout`](crate::Error::Timeout) when its
///   timeout passes (Python's `join` has none; the suite needs one so that a
///   port that never wakes fails instead of hanging);
/// - `task_done` failing with any error once called more times than items
///   were put.
pub trait JoinableQueuePort: Sized {
    /// `JoinableQueue(maxsize)`.
    fn new(maxsize: usize) -> Result<Self>;
    /// `put(item, timeout=...)`: counts one more unfinished task.
    fn put(&self, item: u64, timeout: Option<Duration>) -> Result<()>;
    /// `get(timeout=...)`.
    fn get(&self, timeout: Option<Duration>) -> Result<u64>;
    /// `task_done()`: one task fewer.
    fn task_done(&self) -> Result<()>;
    /// `join()`: waits until every item put has been marked done.
    fn join(&self, timeout: Option<Duration>) -> Result<()>;
}

/// Every check of the suite against `P`, not yet run, in order.
pub fn checks<P: JoinableQueuePort + 'static>() -> Vec<Entry> {
    vec![
        Entry::required(
            "join_waits_for_every_task_done",
            "join blocks until task_done was called once per item put, by any process",
            join_waits::<P>,
        ),
        Entry::required(
            "task_done_more_than_put_is_an_error",
            "task_done called more times than items were put fails",
            too_many::<P>,
        ),
        Entry::required(
            "join_on_an_empty_queue_returns_at_once",
            "join on a queue with no unfinished task returns at once",
            join_empty::<P>,
        ),
    ]
}

/// Runs every check of the suite against `P`.
pub fn check<P: JoinableQueuePort + 'static>() -> std::result::Result<Report, Report> {
    super::check_all("joinable", checks::<P>())
}

/// Runs the one check `name` against `P` (the body of each test
/// [`conformance_tests!`](crate::conformance_tests) makes).
pub fn test<P: JoinableQueuePort + 'static>(name: &str) {
    super::run_one("joinable", checks::<P>(), name)
}

/// Board slots: items put; two tasks done; the early join was checked.
const PUT: usize = 0;
const TWO_DONE: usize = 1;
const CHECKED: usize = 2;

fn join_waits<P: JoinableQueuePort>(scope: &mut Scope) -> Verdict {
    let q = setup("new(0)", P::new(0))?;
    let board = Board::new(3)?;
    let by = deadline();
    let producer = spawn(scope, "producer", || {
        for i in 1..=3 {
            q.put(i, Some(LONG_TIMEOUT))
                .map_err(|e| format!("put {i} failed: {e}"))?;
        }
        board.set(PUT, 1);
        board.wait_for(TWO_DONE, super::CHECK_DEADLINE);
        let what = format!("join with a {SHORT_TIMEOUT:?} timeout after 2 of 3 task_done");
        let op = timed(|| q.join(Some(SHORT_TIMEOUT)));
        let early = expect_error(&what, Expect::Timeout, op, Some(SHORT_TIMEOUT));
        board.set(CHECKED, 1);
        let early = early?;
        match timed(|| q.join(Some(LONG_TIMEOUT))) {
            (Ok(()), took) => Ok(format!(
                "{early}; after the third task_done, join returned in {took:.1?}"
            )),
            (other, _) => Err(format!(
                "join after the third task_done gave {}",
                show(&other)
            )),
        }
    })?;
    let consumer = spawn(scope, "consumer", || {
        board.wait_for(PUT, super::CHECK_DEADLINE);
        for i in 1..=3 {
            q.get(Some(LONG_TIMEOUT))
                .map_err(|e| format!("get {i} failed: {e}"))?;
        }
        for n in 1..=2 {
            q.task_done()
                .map_err(|e| format!("task_done {n} failed: {e}"))?;
        }
        board.set(TWO_DONE, 1);
        board.wait_for(CHECKED, super::CHECK_DEADLINE);
        q.task_done()
            .map(|()| String::new())
            .map_err(|e| format!("task_done 3 failed: {e}"))
    })?;
    finish_all_or_stop(vec![producer, consumer], by)
}

fn too_many<P: JoinableQueuePort>(scope: &mut Scope) -> Verdict {
    let q = setup("new(0)", P::new(0))?;
    spawn(scope, "process", || {
        q.put(1, Some(LONG_TIMEOUT))
            .map_err(|e| format!("put failed: {e}"))?;
        q.get(Some(LONG_TIMEOUT))
            .map_err(|e| format!("get failed: {e}"))?;
        q.task_done()
            .map_err(|e| format!("the first task_done failed: {e}"))?;
        match q.task_done() {
            Err(e) => Ok(format!("a second task_done after 1 put failed: `{e}`")),
            Ok(()) => Err("a second task_done after 1 put returned Ok".into()),
        }
    })?
    .finish(deadline())
}

fn join_empty<P: JoinableQueuePort>(scope: &mut Scope) -> Verdict {
    let q = setup("new(0)", P::new(0))?;
    spawn(scope, "process", || {
        match timed(|| q.join(Some(LONG_TIMEOUT))) {
            (Ok(()), took) if took < TIMEOUT_SLACK => {
                Ok(format!("join on an empty queue returned in {took:.1?}"))
            }
            (other, took) => Err(format!(
                "join on an empty queue gave {} after {took:.1?}",
                show(&other)
            )),
        }
    })?
    .finish(deadline())
}
