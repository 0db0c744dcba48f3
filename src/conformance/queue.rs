//! The suite for a port of `multiprocessing.Queue` (CATALOGUE.md section 4).
//!
//! Implement [`QueuePort`] for your queue and call [`check`]. The checks, in
//! the order they run (each in forked children, see [`super`]):
//! - `fifo_order`: one process puts 1000 items into an unbounded queue
//!   (`maxsize` 0) and gets them back in the same order; `qsize` is 1000, then 0.
//! - `put_on_full_is_full`: on a full queue of `maxsize` 2, a `put` with a
//!   200 ms timeout fails with [`Error::Full`] after waiting about that long
//!   (within [`OP_DEADLINE`](super::OP_DEADLINE)), and changes nothing.
//! - `get_on_empty_is_empty`: likewise a `get` on an empty queue fails with
//!   [`Error::Empty`]; the queue still works afterwards.
//! - `producers_consumer`: 3 forked producers put 200 items each into a queue
//!   of `maxsize` 4 while a forked consumer gets them: every item arrives
//!   exactly once, each producer's items in the order it put them.
//! - `close_drains_then_closed`: after `close`, a `put` fails with
//!   [`Error::Closed`], `get` still returns what was in the queue, in order,
//!   and then fails with [`Error::Closed`] (not `Empty`, and without hanging).
//!
//! The queue is made in the parent (`new`) before the fork; producers and
//! consumers are children that inherited it, as in the tutorial.

use super::{
    Board, Expect, LONG_TIMEOUT, Report, SHORT_TIMEOUT, Verdict, all_of, deadline, expect_error,
    finish_all, setup, show, spawn, timed,
};
use crate::audit::Scope;
use crate::error::{Error, Result};
use std::time::Duration;

/// A port of `multiprocessing.Queue` carrying `u64` items, shared by related
/// processes: made before `fork(2)`, used by parent and children.
///
/// Every method is called in forked children of a multi-threaded process (see
/// [`super`] for what that allows). Errors are the crate's [`Error`]; the
/// suite checks their kind.
pub trait QueuePort: Sized {
    /// `Queue(maxsize)`: at most `maxsize` items at once; 0 means no limit.
    fn new(maxsize: usize) -> Result<Self>;

    /// `put(item, block=True, timeout)`: appends `item`, waiting while the
    /// queue is full. [`Error::Full`] when `timeout` passes first (`None`:
    /// wait forever), [`Error::Closed`] once the queue is closed.
    fn put(&self, item: u64, timeout: Option<Duration>) -> Result<()>;

    /// `get(block=True, timeout)`: removes the oldest item, waiting while the
    /// queue is empty. [`Error::Empty`] when `timeout` passes first,
    /// [`Error::Closed`] once the queue is closed and drained.
    fn get(&self, timeout: Option<Duration>) -> Result<u64>;

    /// `qsize()`: the number of items in the queue now.
    fn qsize(&self) -> Result<usize>;

    /// `close()`: no more items will be put, by any process.
    fn close(&self) -> Result<()>;
}

/// Items one process puts and gets in `fifo_order`.
const FIFO_ITEMS: u64 = 1000;
/// Forked producers in `producers_consumer`.
const PRODUCERS: u64 = 3;
/// Items each producer puts.
const PER_PRODUCER: u64 = 200;
/// The queue's `maxsize` in `producers_consumer` (small, so puts wait too).
const BOUND: usize = 4;

/// Runs every check of the suite against `P`: `Ok` if all passed, `Err` with
/// the same report otherwise (so `check::<P>().unwrap()` prints it).
pub fn check<P: QueuePort>() -> std::result::Result<Report, Report> {
    let mut report = Report::new("queue");
    report.run("fifo_order", fifo_order::<P>);
    report.run("put_on_full_is_full", put_on_full::<P>);
    report.run("get_on_empty_is_empty", get_on_empty::<P>);
    report.run("producers_consumer", producers_consumer::<P>);
    report.run("close_drains_then_closed", close_drains_then_closed::<P>);
    report.into_result()
}

fn fifo_order<P: QueuePort>(scope: &mut Scope) -> Verdict {
    let q = setup("new(0)", P::new(0))?;
    let child = spawn(scope, "process putting and getting", || {
        for i in 0..FIFO_ITEMS {
            q.put(i, Some(LONG_TIMEOUT))
                .map_err(|e| format!("put of item {i} into an unbounded queue failed: {e}"))?;
        }
        expect_qsize(&q, FIFO_ITEMS as usize, "after every put")?;
        for i in 0..FIFO_ITEMS {
            match q.get(Some(LONG_TIMEOUT)) {
                Ok(v) if v == i => {}
                other => return Err(format!("get {i} returned {}, expected {i}", show(&other))),
            }
        }
        expect_qsize(&q, 0, "after every get")?;
        Ok(format!(
            "{FIFO_ITEMS} items put into an unbounded queue came out in order; qsize {FIFO_ITEMS}, then 0"
        ))
    })?;
    child.finish(deadline())
}

fn put_on_full<P: QueuePort>(scope: &mut Scope) -> Verdict {
    let q = setup("new(2)", P::new(2))?;
    let child = spawn(scope, "process filling the queue", || {
        for i in 0..2 {
            q.put(i, Some(LONG_TIMEOUT))
                .map_err(|e| format!("put of item {i} of 2 (maxsize 2) failed: {e}"))?;
        }
        let what = format!("put on a full queue with a {SHORT_TIMEOUT:?} timeout");
        let op = timed(|| q.put(2, Some(SHORT_TIMEOUT)));
        let seen = expect_error(&what, Expect::Full, op, Some(SHORT_TIMEOUT))?;
        expect_qsize(&q, 2, "after the refused put")?;
        Ok(seen)
    })?;
    child.finish(deadline())
}

fn get_on_empty<P: QueuePort>(scope: &mut Scope) -> Verdict {
    let q = setup("new(2)", P::new(2))?;
    let child = spawn(scope, "process getting from the empty queue", || {
        let what = format!("get on an empty queue with a {SHORT_TIMEOUT:?} timeout");
        let op = timed(|| q.get(Some(SHORT_TIMEOUT)));
        let seen = expect_error(&what, Expect::Empty, op, Some(SHORT_TIMEOUT))?;
        let put = q.put(7, Some(LONG_TIMEOUT));
        match put.and_then(|()| q.get(Some(LONG_TIMEOUT))) {
            Ok(7) => Ok(format!("{seen}; a later put and get still work")),
            other => Err(format!(
                "after the timed-out get, put 7 then get gave {}",
                show(&other)
            )),
        }
    })?;
    child.finish(deadline())
}

fn producers_consumer<P: QueuePort>(scope: &mut Scope) -> Verdict {
    let q = setup(&format!("new({BOUND})"), P::new(BOUND))?;
    let q = &q;
    let done = Board::new(1)?;
    let by = deadline();
    let consumer = spawn(scope, "consumer", || consume(q, &done))?;
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        producers.push(spawn(scope, "producer", move || produce(q, p))?);
    }
    let produced = finish_all(producers, by);
    done.set(0, 1);
    let consumed = consumer.finish(by);
    all_of([produced, consumed])
}

/// A producer's work: `PER_PRODUCER` items, each `p << 32 | sequence number`.
fn produce<P: QueuePort>(q: &P, p: u64) -> Verdict {
    for seq in 0..PER_PRODUCER {
        q.put(p << 32 | seq, Some(LONG_TIMEOUT))
            .map_err(|e| format!("producer {p}: put of its item {seq} failed: {e}"))?;
    }
    Ok(String::new())
}

/// The consumer's work: gets until the producers are done and the queue is
/// empty, checking each producer's order as it goes.
fn consume<P: QueuePort>(q: &P, done: &Board) -> Verdict {
    let mut tally = Tally::default();
    loop {
        // Read before the get: if every producer had already been reaped, all
        // their puts had returned, so an Empty means nothing more will come.
        let finished = done.get(0) != 0;
        match q.get(Some(SHORT_TIMEOUT)) {
            Ok(item) => tally.take(item)?,
            Err(Error::Empty(_)) if finished => return tally.verdict(),
            Err(Error::Empty(_)) => {}
            Err(e) => return Err(format!("get failed after {} items: {e}", tally.got)),
        }
    }
}

/// What the consumer has seen.
#[derive(Default)]
struct Tally {
    /// The sequence number due next from each producer.
    next: [u64; PRODUCERS as usize],
    got: u64,
    out_of_order: u64,
    first: Option<String>,
}

impl Tally {
    /// Checks one item against the sequence number due from its producer.
    fn take(&mut self, item: u64) -> std::result::Result<(), String> {
        let total = PRODUCERS * PER_PRODUCER;
        self.got += 1;
        if self.got > total {
            return Err(format!(
                "more than the {total} items put arrived (duplicates)"
            ));
        }
        let (p, seq) = ((item >> 32) as usize, item & 0xffff_ffff);
        let Some(due) = self.next.get_mut(p) else {
            return Err(format!("got {item:#x}, which no producer put"));
        };
        if seq != *due {
            let why = if seq < *due {
                "a duplicate or a reordering"
            } else {
                "items lost or reordered"
            };
            self.first.get_or_insert(format!(
                "producer {p}'s item {seq} arrived when {due} was due ({why})"
            ));
            self.out_of_order += 1;
        }
        *due = (*due).max(seq + 1);
        Ok(())
    }

    fn verdict(self) -> Verdict {
        let total = PRODUCERS * PER_PRODUCER;
        match self.first {
            None if self.got == total => Ok(format!(
                "{PRODUCERS} producers x {PER_PRODUCER} items through a queue of maxsize {BOUND}: each arrived once, in its producer's order"
            )),
            first => Err(format!(
                "{} of {total} items arrived; {} broke their producer's sequence{}",
                self.got,
                self.out_of_order,
                first
                    .map(|f| format!("; the first: {f}"))
                    .unwrap_or_default()
            )),
        }
    }
}

fn close_drains_then_closed<P: QueuePort>(scope: &mut Scope) -> Verdict {
    let q = setup("new(0)", P::new(0))?;
    let child = spawn(scope, "process closing the queue", || {
        for i in 1..=3 {
            q.put(i, Some(LONG_TIMEOUT))
                .map_err(|e| format!("put of item {i} of 3 failed: {e}"))?;
        }
        q.close().map_err(|e| format!("close failed: {e}"))?;
        let op = timed(|| q.put(4, Some(SHORT_TIMEOUT)));
        expect_error("put after close", Expect::Closed, op, None)?;
        for i in 1..=3 {
            match q.get(Some(LONG_TIMEOUT)) {
                Ok(v) if v == i => {}
                other => {
                    return Err(format!(
                        "get {i} of 3 after close returned {}; items put before close must still come out",
                        show(&other)
                    ));
                }
            }
        }
        let op = timed(|| q.get(Some(SHORT_TIMEOUT)));
        let seen = expect_error("get on the closed, drained queue", Expect::Closed, op, None)?;
        Ok(format!(
            "put after close refused, 3 items drained in order; {seen}"
        ))
    })?;
    child.finish(deadline())
}

/// Checks `qsize` in a child.
fn expect_qsize<P: QueuePort>(q: &P, want: usize, when: &str) -> std::result::Result<(), String> {
    match q.qsize() {
        Ok(n) if n == want => Ok(()),
        other => Err(format!(
            "qsize {when} was {}, expected {want}",
            show(&other)
        )),
    }
}
