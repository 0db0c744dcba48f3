//! The suite for a port of a System V-style typed message queue
//! (`sysv_ipc.MessageQueue`, CATALOGUE.md section 4, `pi-sysv-mq`).
//!
//! Implement [`TypedQueuePort`] and call [`check`] or
//! `ipckit::conformance_tests!(typed, MyQueue)`. One process sends the
//! messages (type, text) `(3, c1) (1, a1) (2, b1) (1, a2) (3, c2)`; another
//! receives (`msgrcv(2)` with `IPC_NOWAIT`):
//! - `type_zero_takes_the_oldest`: type 0 takes every message in the order
//!   sent, then finds none ([`Error::Empty`]).
//! - `positive_type_takes_the_first_of_that_type`: type 1 gives a1, then
//!   a2, then none; type 3 then gives c1.
//! - `negative_type_takes_the_lowest_type_up_to`: type −2 gives a1, a2,
//!   b1 (the lowest type at most 2, oldest first), then none; −3 gives c1.
//! - `messages_cross_processes`: 3 processes each send 50 messages of their
//!   own type (type 1's sender first, the other two at once); a fourth
//!   receives each type's 50 in the order sent, the last type first.
//!
//! [`Error::Empty`]: crate::Error::Empty

use super::{Entry, Report, Verdict, deadline, finish_all, setup, show, spawn};
use crate::audit::Scope;
use crate::error::{Error, Result};

/// A port of a System V message queue (`svipc(7)`): messages carry an
/// integer type > 0; there are no priorities.
///
/// # Contract
/// - `new` makes a fresh queue (a private or unused key) in the check runner;
///   children inherit it and end with `_exit(2)` without dropping it; the
///   runner's drop must remove it (`msgctl(IPC_RMID)`): a queue left behind
///   fails the check.
/// - Messages are at most 16 bytes; at most 150 are in the queue at once.
/// - `try_receive` never blocks: [`Error::Empty`] when no message matches.
pub trait TypedQueuePort: Sized {
    /// `msgget(IPC_PRIVATE or a fresh key, IPC_CREAT | IPC_EXCL)`.
    fn new() -> Result<Self>;

    /// `msgsnd(2)`: sends `data` with type `mtype` (> 0).
    fn send(&self, mtype: i64, data: &[u8]) -> Result<()>;

    /// `msgrcv(2)` with `IPC_NOWAIT`: `msgtyp` 0 takes the first message, >
    /// 0 the first of that type, < 0 the first of the lowest type at most
    /// `|msgtyp|`. Returns the type and the data.
    fn try_receive(&self, msgtyp: i64) -> Result<(i64, Vec<u8>)>;
}

/// What one process sends in the selection checks, in order.
const SENT: [(i64, &str); 5] = [(3, "c1"), (1, "a1"), (2, "b1"), (1, "a2"), (3, "c2")];

/// Every check of the suite against `P`, not yet run, in order.
pub fn checks<P: TypedQueuePort + 'static>() -> Vec<Entry> {
    let select = |name, expected, want: &'static [(i64, Option<&'static str>)]| {
        Entry::required(name, expected, move |s| selection::<P>(s, want))
    };
    vec![
        select(
            "type_zero_takes_the_oldest",
            "receive with type 0 takes the messages in the order sent, whatever their type",
            &[
                (0, Some("c1")),
                (0, Some("a1")),
                (0, Some("b1")),
                (0, Some("a2")),
                (0, Some("c2")),
                (0, None),
            ],
        ),
        select(
            "positive_type_takes_the_first_of_that_type",
            "receive with type t > 0 takes the oldest message of type t",
            &[(1, Some("a1")), (1, Some("a2")), (1, None), (3, Some("c1"))],
        ),
        select(
            "negative_type_takes_the_lowest_type_up_to",
            "receive with type -t takes the oldest message of the lowest type at most t",
            &[
                (-2, Some("a1")),
                (-2, Some("a2")),
                (-2, Some("b1")),
                (-2, None),
                (-3, Some("c1")),
            ],
        ),
        Entry::required(
            "messages_cross_processes",
            "messages sent by several processes arrive in another, each type in the order sent",
            cross::<P>,
        ),
    ]
}

/// Runs every check of the suite against `P`.
pub fn check<P: TypedQueuePort + 'static>() -> std::result::Result<Report, Report> {
    super::check_all("typed", checks::<P>())
}

/// Runs the one check `name` against `P` (the body of each test
/// [`conformance_tests!`](crate::conformance_tests) makes).
pub fn test<P: TypedQueuePort + 'static>(name: &str) {
    super::run_one("typed", checks::<P>(), name)
}

fn selection<P: TypedQueuePort>(scope: &mut Scope, want: &[(i64, Option<&str>)]) -> Verdict {
    let q = setup("new()", P::new())?;
    let by = deadline();
    spawn(scope, "sending process", || {
        for (t, text) in SENT {
            q.send(t, text.as_bytes())
                .map_err(|e| format!("send of type {t} failed: {e}"))?;
        }
        Ok(String::new())
    })?
    .finish(by)?;
    spawn(scope, "receiving process", || {
        for (i, (t, expect)) in want.iter().enumerate() {
            let got = q.try_receive(*t);
            let fine = match (&got, expect) {
                (Ok((_, data)), Some(text)) => data == text.as_bytes(),
                (Err(Error::Empty(_)), None) => true,
                _ => false,
            };
            if !fine {
                let shown = show(&got.map(|(t, d)| (t, String::from_utf8_lossy(&d).into_owned())));
                let wanted = expect.map_or("Error::Empty".to_string(), |e| format!("{e:?}"));
                return Err(format!(
                    "receive {i} with type {t} gave {shown}, expected {wanted}"
                ));
            }
        }
        let asked: Vec<String> = want
            .iter()
            .map(|(t, e)| format!("{t}: {}", e.unwrap_or("none")))
            .collect();
        Ok(format!("sent {SENT:?}; received {}", asked.join(", ")))
    })?
    .finish(by)
}

/// Senders and messages each in `messages_cross_processes`.
const SENDERS: i64 = 3;
const EACH: u32 = 50;

fn cross<P: TypedQueuePort>(scope: &mut Scope) -> Verdict {
    let q = setup("new()", P::new())?;
    let q = &q;
    let by = deadline();
    let sender = |scope: &mut Scope, t: i64| {
        spawn(scope, "sending process", move || {
            for i in 0..EACH {
                q.send(t, &i.to_le_bytes())
                    .map_err(|e| format!("send {i} of type {t} failed: {e}"))?;
            }
            Ok(String::new())
        })
    };
    // Type 1 is sent first, alone: whatever the scheduling, the oldest
    // message is then of type 1, so a port that ignores the type can never
    // pass by luck. The other senders run at the same time.
    sender(scope, 1)?.finish(by)?;
    let rest = (2..=SENDERS)
        .map(|t| sender(scope, t))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    finish_all(rest, by)?;
    spawn(scope, "receiving process", || {
        // Newest type first: a port that ignores the type gives type 1.
        for t in (1..=SENDERS).rev() {
            for i in 0..EACH {
                match q.try_receive(t) {
                    Ok((got, data)) if got == t && data == i.to_le_bytes() => {}
                    other => return Err(format!("receive {i} of type {t} gave {}", show(&other))),
                }
            }
        }
        Ok(format!("{SENDERS} processes x {EACH} messages of their own type: each type arrived in the order sent"))
    })?
    .finish(by)
}
