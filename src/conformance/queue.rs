//! The suite for a port of `multiprocessing.Queue` (CATALOGUE.md section 4).
//!
//! Implement [`QueuePort`] for your queue and call [`check`] (the whole
//! report) or `ipckit::conformance_tests!(queue, MyQueue)` (one test per
//! check). The checks, in the order they run (each in a check runner with
//! forked children, see [`super`]):
//! - `fifo_order`: one process pushes 1000 items through a queue of
//!   `maxsize` 8, kept full (a get, then a put), and gets them in the order
//!   it put them; `qsize` is 8 while full, then 0.
//! - `unbounded`: `maxsize` 0 means no limit: 1000 puts with a 200 ms
//!   timeout each all succeed without waiting, and `qsize` is 1000. A port of
//!   a mechanism that cannot be unbounded (a POSIX message queue is capped by
//!   the kernel's `msg_max`) says why in [`QueuePort::CANNOT_BE_UNBOUNDED`],
//!   and this check is then a NOTE carrying that reason.
//! - `put_on_full_is_full`: on a full queue of `maxsize` 2, a `put` with a
//!   200 ms timeout fails with [`Error::Full`] after waiting about that long
//!   (within [`OP_DEADLINE`](super::OP_DEADLINE)), and changes nothing.
//! - `get_on_empty_is_empty`: likewise a `get` on an empty queue fails with
//!   [`Error::Empty`]; the queue still works afterwards.
//! - `get_timeout_crossing_a_second`: a `get` on an empty queue with each
//!   timeout of [`CROSSING_TIMEOUTS`](super::CROSSING_TIMEOUTS), started
//!   just before a second boundary (see
//!   [`CROSSING_TIMEOUTS`](super::CROSSING_TIMEOUTS)), fails with
//!   [`Error::Empty`] after waiting its timeout.
//! - `producers_consumer`: 3 forked producers put 200 items each into a queue
//!   of `maxsize` 4 while a forked consumer gets them: every item arrives
//!   exactly once, each producer's items in the order it put them.
//! - `close_drains_then_closed`: after `close`, a `put` fails with
//!   [`Error::Closed`], `get` still returns what was in the queue, in order,
//!   and then fails with [`Error::Closed`] (not `Empty`, and without hanging).
//! - `close_seen_by_another_process`: one process puts 2 items and closes
//!   the queue, then exits; another process then finds a `put` refused with
//!   [`Error::Closed`], gets the 2 items, then [`Error::Closed`].
//!
//! The queue is made in the check runner (`new`) before the fork; producers
//! and consumers are children that inherited it, as in the tutorial.

use super::{
    Board, Entry, Expect, LONG_TIMEOUT, Report, SHORT_TIMEOUT, Verdict, Watch, all_of, deadline,
    expect_error, expect_timeouts, finish_all, setup, show, spawn, timed,
};
use crate::audit::Scope;
use crate::error::{Error, Result};
use std::time::Duration;

/// A port of `multiprocessing.Queue` carrying `u64` items, shared by related
/// processes: made before `fork(2)`, used by parent and children.
///
/// # Contract
/// - Items are `u64`: a port of a queue of bytes or of any serialisable type
///   sends `item.to_le_bytes()` and reads them back.
/// - Every timeout the suite passes is `Some`; `None` means wait forever.
/// - The queue is made in one process and inherited by `fork(2)`; every
///   method is called in forked children of a multi-threaded process (see
///   [`super`] for what that allows).
/// - A child ends with `_exit(2)`: its copy of the port is *not* dropped, so
///   `Drop` runs once, in the process that called `new`. Dropping it there
///   must remove every named object the queue made (the check runner fails
///   the check for any object left, whatever its name).
/// - Errors are the crate's [`Error`]; the suite checks their kind
///   ([`Error::Full`], [`Error::Empty`], [`Error::Closed`]); any other kind
///   (for instance [`Error::Other`] with your own message) is a failure that
///   shows your message.
pub trait QueuePort: Sized {
    /// `Some(why)` if the mechanism cannot be unbounded (a POSIX message
    /// queue is capped by `/proc/sys/fs/mqueue/msg_max`): the `unbounded`
    /// check is then a NOTE with this reason instead of a FAIL.
    const CANNOT_BE_UNBOUNDED: Option<&'static str> = None;

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

/// Items pushed through the queue in `fifo_order` and put in `unbounded`.
const FIFO_ITEMS: u64 = 1000;
/// The `maxsize` of the queue in `fifo_order` (at most the 10 messages a
/// POSIX queue holds by default).
const FIFO_BOUND: usize = 8;
/// Forked producers in `producers_consumer`.
const PRODUCERS: u64 = 3;
/// Items each producer puts.
const PER_PRODUCER: u64 = 200;
/// The queue's `maxsize` in `producers_consumer` (small, so puts wait too).
const BOUND: usize = 4;

/// Every check of the suite against `P`, not yet run, in order.
pub fn checks<P: QueuePort + 'static>() -> Vec<Entry> {
    let unbounded = match P::CANNOT_BE_UNBOUNDED {
        None => Entry::required(
            "unbounded",
            "a queue of maxsize 0 takes 1000 items without waiting",
            unbounded::<P>,
        ),
        Some(why) => Entry::noted(
            "unbounded",
            "a queue of maxsize 0 takes 1000 items without waiting",
            move |_| Ok(format!("cannot be unbounded (said by the port): {why}")),
        ),
    };
    vec![
        Entry::required(
            "fifo_order",
            "items one process puts come out in the order it put them",
            fifo_order::<P>,
        ),
        unbounded,
        Entry::required(
            "put_on_full_is_full",
            "a put on a full queue fails with Error::Full after its timeout, changing nothing",
            put_on_full::<P>,
        ),
        Entry::required(
            "get_on_empty_is_empty",
            "a get on an empty queue fails with Error::Empty after its timeout",
            get_on_empty::<P>,
        ),
        Entry::required(
            "get_timeout_crossing_a_second",
            "a get on an empty queue waits its whole timeout, also when the deadline crosses a second boundary",
            get_timeout_crossing::<P>,
        ),
        Entry::required(
            "producers_consumer",
            "items from several producer processes each arrive once, in their producer's order",
            producers_consumer::<P>,
        ),
        Entry::required(
            "close_drains_then_closed",
            "after close, put fails with Error::Closed and get drains the queue, then fails with Error::Closed",
            close_drains_then_closed::<P>,
        ),
        Entry::required(
            "close_seen_by_another_process",
            "once one process closed the queue, no process can put: another sees Error::Closed",
            close_seen_by_another_process::<P>,
        ),
    ]
}

/// Runs every check of the suite against `P`: `Ok` if all passed, `Err` with
/// the same report otherwise (so `check::<P>().unwrap()` prints it).
pub fn check<P: QueuePort + 'static>() -> std::result::Result<Report, Report> {
    super::check_all("queue", checks::<P>())
}

/// Runs the one check `name` against `P`, panicking with what was expected
/// and what was seen if it fails: the body of each test
/// [`conformance_tests!`](crate::conformance_tests) makes.
pub fn test<P: QueuePort + 'static>(name: &str) {
    super::run_one("queue", checks::<P>(), name)
}

fn fifo_order<P: QueuePort>(scope: &mut Scope) -> Verdict {
    let q = setup(&format!("new({FIFO_BOUND})"), P::new(FIFO_BOUND))?;
    let child = spawn(scope, "process putting and getting", || {
        let bound = FIFO_BOUND as u64;
        for i in 0..bound {
            put_one(&q, i)?;
        }
        expect_qsize(&q, FIFO_BOUND, "once full")?;
        for i in 0..FIFO_ITEMS {
            match q.get(Some(LONG_TIMEOUT)) {
                Ok(v) if v == i => {}
                other => return Err(format!("get {i} returned {}, expected {i}", show(&other))),
            }
            if i + bound < FIFO_ITEMS {
                put_one(&q, i + bound)?;
            }
        }
        expect_qsize(&q, 0, "after every get")?;
        Ok(format!(
            "{FIFO_ITEMS} items pushed through a queue of maxsize {FIFO_BOUND}, kept full, came out in order; qsize {FIFO_BOUND}, then 0"
        ))
    })?;
    child.finish(deadline())
}

/// In a child: puts item `i`, which must go in.
fn put_one<P: QueuePort>(q: &P, i: u64) -> std::result::Result<(), String> {
    q.put(i, Some(LONG_TIMEOUT))
        .map_err(|e| format!("put of item {i} failed: {e}"))
}

fn unbounded<P: QueuePort>(scope: &mut Scope) -> Verdict {
    let q = setup("new(0)", P::new(0))?;
    let child = spawn(scope, "process filling the queue", || {
        for i in 0..FIFO_ITEMS {
            q.put(i, Some(SHORT_TIMEOUT)).map_err(|e| {
                format!("put of item {i} into a queue of maxsize 0 failed: {e} (if your mechanism cannot be unbounded, say why in QueuePort::CANNOT_BE_UNBOUNDED)")
            })?;
        }
        expect_qsize(&q, FIFO_ITEMS as usize, "after every put")?;
        Ok(format!(
            "{FIFO_ITEMS} puts into a queue of maxsize 0 all went in; qsize {FIFO_ITEMS}"
        ))
    })?;
    child.finish(deadline())
}

fn get_timeout_crossing<P: QueuePort>(scope: &mut Scope) -> Verdict {
    let q = setup("new(2)", P::new(2))?;
    let watch = Watch::new()?;
    let child = spawn(scope, "process getting from the empty queue", || {
        let what = "get on an empty queue";
        expect_timeouts(&watch, what, Expect::Empty, |t| q.get(Some(t)))
    })?;
    child.finish_watched(&watch, deadline())
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

fn close_seen_by_another_process<P: QueuePort>(scope: &mut Scope) -> Verdict {
    let q = setup("new(0)", P::new(0))?;
    let by = deadline();
    let closer = spawn(scope, "process closing the queue", || {
        for i in 1..=2 {
            put_one(&q, i)?;
        }
        q.close().map_err(|e| format!("close failed: {e}"))?;
        Ok(String::new())
    })?;
    closer.finish(by)?;
    let other = spawn(scope, "another process", || {
        let op = timed(|| q.put(3, Some(SHORT_TIMEOUT)));
        expect_error(
            "put in another process after close",
            Expect::Closed,
            op,
            None,
        )?;
        for i in 1..=2 {
            match q.get(Some(LONG_TIMEOUT)) {
                Ok(v) if v == i => {}
                other => {
                    return Err(format!(
                        "get {i} of 2 in another process after close returned {}",
                        show(&other)
                    ));
                }
            }
        }
        let op = timed(|| q.get(Some(SHORT_TIMEOUT)));
        let seen = expect_error(
            "get on the drained queue in another process",
            Expect::Closed,
            op,
            None,
        )?;
        Ok(format!(
            "one process closed the queue; in another, put was refused with Error::Closed, 2 items drained; {seen}"
        ))
    })?;
    other.finish(by)
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
