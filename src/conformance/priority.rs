//! The suite for a port of a POSIX-style priority message queue
//! (`posix_ipc.MessageQueue`, CATALOGUE.md section 4, `pi-posix-mq`).
//!
//! Implement [`PriorityQueuePort`] and call [`check`] or
//! `ipckit::conformance_tests!(priority, MyQueue)`. Each check makes a queue
//! under a name of its own (`/ipckit-check-<pid>-<n>`) and unlinks it. The
//! checks:
//! - `priority_order`: messages sent with priorities 1, 9, 5 by one process
//!   are received by another as 9, 5, 1, each with its priority.
//! - `fifo_within_a_priority`: sent as (3, 7, 3, 7, 3), messages come out
//!   as both 7s in the order sent, then the three 3s in the order sent.
//! - `create_exclusive_refuses_an_existing_name`: `O_CREAT | O_EXCL` on a
//!   name that exists fails (`EEXIST`); `open` of it succeeds.
//! - `close_is_not_unlink`: after every handle is closed the queue and its
//!   message are still there (another process opens it and receives the
//!   message); after `unlink`, `open` fails.
//! - `receive_timeout_crossing_a_second`: a receive on an empty queue with
//!   each timeout of [`CROSSING_TIMEOUTS`](super::CROSSING_TIMEOUTS) started
//!   just before a second boundary fails with [`Error::Empty`] after waiting.
//!
//! [`Error::Empty`]: crate::Error::Empty

use super::{
    Entry, Expect, LONG_TIMEOUT, Report, Verdict, Watch, all_of, deadline, expect_timeouts, setup,
    show, spawn,
};
use crate::audit::Scope;
use crate::error::Result;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A port of a named POSIX message queue (`mq_overview(7)`).
///
/// # Contract
/// - `name` is a POSIX name: a leading slash, no other slash.
/// - The suite makes the queue in the check runner and forks children that
///   inherit the handle, or `open` the name themselves. Children end with
///   `_exit(2)` and do not drop their handles; the runner drops or `close`s
///   its own, then `unlink`s the name. Dropping a handle must close it
///   (`mq_close(3)`) and nothing more; only `unlink` removes the queue.
/// - Messages are byte strings of at most 64 bytes here; at most 5 are in a
///   queue at once (under the default `msg_max` of 10).
/// - A receive whose timeout passes fails with
///   [`Error::Empty`](crate::Error::Empty) (Python's `BusyError`); every
///   timeout the suite passes is `Some`.
pub trait PriorityQueuePort: Sized {
    /// `mq_open(name, O_CREAT | O_EXCL)`: creates the queue, failing if the
    /// name exists.
    fn create_exclusive(name: &str) -> Result<Self>;

    /// `mq_open(name)`: opens an existing queue.
    fn open(name: &str) -> Result<Self>;

    /// `mq_send(3)`: sends `message` with `priority` (higher first).
    fn send(&self, message: &[u8], priority: u32) -> Result<()>;

    /// `mq_timedreceive(3)`: the oldest message of the highest priority,
    /// with its priority.
    fn receive(&self, timeout: Option<Duration>) -> Result<(Vec<u8>, u32)>;

    /// `mq_close(3)`: closes this process's handle; the queue stays.
    fn close(self) -> Result<()>;

    /// `mq_unlink(3)`: removes the name; the queue goes once all handles
    /// are closed.
    fn unlink(name: &str) -> Result<()>;
}

/// Every check of the suite against `P`, not yet run, in order.
pub fn checks<P: PriorityQueuePort + 'static>() -> Vec<Entry> {
    vec![
        Entry::required(
            "priority_order",
            "higher priority first: sent 1, 9, 5, received 9, 5, 1 with their priorities",
            |s| {
                order::<P>(
                    s,
                    &[(b"low", 1), (b"high", 9), (b"mid", 5)],
                    &[(b"high", 9), (b"mid", 5), (b"low", 1)],
                )
            },
        ),
        Entry::required(
            "fifo_within_a_priority",
            "messages of one priority come out in the order they were sent",
            |s| {
                order::<P>(
                    s,
                    &[(b"3a", 3), (b"7a", 7), (b"3b", 3), (b"7b", 7), (b"3c", 3)],
                    &[(b"7a", 7), (b"7b", 7), (b"3a", 3), (b"3b", 3), (b"3c", 3)],
                )
            },
        ),
        Entry::required(
            "create_exclusive_refuses_an_existing_name",
            "O_CREAT | O_EXCL on an existing name fails; opening it succeeds",
            exclusive::<P>,
        ),
        Entry::required(
            "close_is_not_unlink",
            "a queue outlives the handles closed on it until unlinked; after unlink it cannot be opened",
            close_is_not_unlink::<P>,
        ),
        Entry::required(
            "receive_timeout_crossing_a_second",
            "a receive on an empty queue fails with Error::Empty after its whole timeout, also across a second boundary",
            crossing::<P>,
        ),
    ]
}

/// Runs every check of the suite against `P`.
pub fn check<P: PriorityQueuePort + 'static>() -> std::result::Result<Report, Report> {
    super::check_all("priority", checks::<P>())
}

/// Runs the one check `name` against `P` (the body of each test
/// [`conformance_tests!`](crate::conformance_tests) makes).
pub fn test<P: PriorityQueuePort + 'static>(name: &str) {
    super::run_one("priority", checks::<P>(), name)
}

/// A queue name no other check uses.
fn unique_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("/ipckit-check-{}-{n}", std::process::id())
}

/// Makes a queue, runs `body` with it, then drops it and unlinks the name.
fn with_queue<P: PriorityQueuePort>(
    scope: &mut Scope,
    body: impl FnOnce(&mut Scope, &P, &str) -> Verdict,
) -> Verdict {
    let name = unique_name();
    let q = setup(
        &format!("create_exclusive({name})"),
        P::create_exclusive(&name),
    )?;
    let verdict = body(scope, &q, &name);
    drop(q);
    let unlinked = setup(&format!("unlink({name})"), P::unlink(&name)).map(|()| String::new());
    all_of([verdict, unlinked])
}

/// One process sends `sent`; another receives and expects `want`.
fn order<P: PriorityQueuePort>(
    scope: &mut Scope,
    sent: &[(&[u8], u32)],
    want: &[(&[u8], u32)],
) -> Verdict {
    with_queue::<P>(scope, |scope, q, _| {
        let by = deadline();
        spawn(scope, "sending process", || {
            for (msg, prio) in sent {
                q.send(msg, *prio)
                    .map_err(|e| format!("send with priority {prio} failed: {e}"))?;
            }
            Ok(String::new())
        })?
        .finish(by)?;
        spawn(scope, "receiving process", || {
            for (i, (msg, prio)) in want.iter().enumerate() {
                match q.receive(Some(LONG_TIMEOUT)) {
                    Ok((m, p)) if m == *msg && p == *prio => {}
                    other => {
                        return Err(format!(
                            "receive {i} gave {}, expected ({:?}, {prio})",
                            show(
                                &other.map(|(m, p)| (String::from_utf8_lossy(&m).into_owned(), p))
                            ),
                            String::from_utf8_lossy(msg)
                        ));
                    }
                }
            }
            Ok(format!("sent {}, received {}", words(sent), words(want)))
        })?
        .finish(by)
    })
}

/// Messages and priorities in words: `high/9, mid/5`.
fn words(msgs: &[(&[u8], u32)]) -> String {
    let each = msgs
        .iter()
        .map(|(m, p)| format!("{}/{p}", String::from_utf8_lossy(m)));
    each.collect::<Vec<_>>().join(", ")
}

fn exclusive<P: PriorityQueuePort>(scope: &mut Scope) -> Verdict {
    with_queue::<P>(scope, |scope, _q, name| {
        spawn(scope, "another process", || {
            if let Ok(_again) = P::create_exclusive(name) {
                return Err(format!(
                    "create_exclusive({name}) succeeded although {name} existed"
                ));
            }
            let opened = P::open(name)
                .map_err(|e| format!("open({name}) of the existing queue failed: {e}"))?;
            drop(opened);
            Ok(format!(
                "create_exclusive of the existing {name} failed; open succeeded"
            ))
        })?
        .finish(deadline())
    })
}

fn close_is_not_unlink<P: PriorityQueuePort>(scope: &mut Scope) -> Verdict {
    let name = unique_name();
    let by = deadline();
    let q = setup(
        &format!("create_exclusive({name})"),
        P::create_exclusive(&name),
    )?;
    spawn(scope, "sending process", || {
        let sent = q.send(b"kept", 2);
        sent.map(|()| String::new())
            .map_err(|e| format!("send failed: {e}"))
    })?
    .finish(by)?;
    setup("close of the last handle", q.close())?;
    let reopened = spawn(scope, "process opening the closed queue", || {
        let q = P::open(&name)
            .map_err(|e| format!("open({name}) after every handle was closed failed: {e}"))?;
        match q.receive(Some(LONG_TIMEOUT)) {
            Ok((m, _)) if m == b"kept" => {
                Ok("after close, the queue and its message were still there".into())
            }
            other => Err(format!("receive after reopening gave {}", show(&other))),
        }
    })?
    .finish(by);
    let unlinked = setup(&format!("unlink({name})"), P::unlink(&name)).map(|()| String::new());
    let gone = spawn(
        scope,
        "process opening the unlinked queue",
        || match P::open(&name) {
            Ok(_) => Err(format!("open({name}) succeeded after unlink")),
            Err(e) => Ok(format!("after unlink, open failed ({e})")),
        },
    )?
    .finish(by);
    all_of([reopened, unlinked, gone])
}

fn crossing<P: PriorityQueuePort>(scope: &mut Scope) -> Verdict {
    with_queue::<P>(scope, |scope, q, _| {
        let watch = Watch::new()?;
        spawn(scope, "receiving process", || {
            expect_timeouts(&watch, "receive on an empty queue", Expect::Empty, |t| {
                q.receive(Some(t))
            })
        })?
        .finish_watched(&watch, deadline())
    })
}
