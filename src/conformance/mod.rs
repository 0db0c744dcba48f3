//! Conformance suites: trait-generic checks a student's Rust crate runs against
//! its own port of a mechanism (DESIGN.md item 4).
//!
//! A student implements one small trait for their port and asks for one test
//! per check with [`conformance_tests!`](crate::conformance_tests)
//! (`ipckit::conformance_tests!(queue, MyQueue);`), or calls the whole suite
//! from one test of their own crate:
//!
//! ```no_run
//! use ipckit::conformance::queue::{self, QueuePort};
//! use std::time::Duration;
//!
//! struct MyQueue(ipckit::queue::Queue<u64>); // your port goes here
//!
//! impl QueuePort for MyQueue {
//!     fn new(maxsize: usize) -> ipckit::Result<Self> {
//!         ipckit::queue::Queue::new(maxsize).map(MyQueue)
//!     }
//!     fn put(&self, item: u64, timeout: Option<Duration>) -> ipckit::Result<()> {
//!         self.0.put(&item, timeout.map_or(ipckit::queue::Wait::Forever, ipckit::queue::Wait::For))
//!     }
//!     fn get(&self, timeout: Option<Duration>) -> ipckit::Result<u64> {
//!         self.0.get(timeout.map_or(ipckit::queue::Wait::Forever, ipckit::queue::Wait::For))
//!     }
//!     fn qsize(&self) -> ipckit::Result<usize> {
//!         Ok(self.0.qsize())
//!     }
//!     fn close(&self) -> ipckit::Result<()> {
//!         self.0.close()
//!     }
//! }
//!
//! #[test]
//! fn my_queue_conforms() {
//!     queue::check::<MyQueue>().unwrap(); // on failure, prints the whole report
//! }
//! ```
//!
//! The suites, one per mechanism of the catalogue: [`queue`]
//! (`multiprocessing.Queue`), [`joinable`] (`JoinableQueue`), [`lock`]
//! (`Lock`), [`rlock`] (`RLock`), [`semaphore`] (`Semaphore`,
//! `BoundedSemaphore`), [`pipe`] (`Pipe` and `Connection`), [`priority`]
//! (POSIX message queues), [`typed`] (System V message queues), [`shared`]
//! (`Value` and `Array`), [`manager`] (`Manager` proxies), [`process`]
//! (`Process`) and [`pool`] (`Pool`). Each trait's documentation states its
//! contract in full (fork and `Drop` rules, item types, timeouts). Each
//! suite returns a [`Report`]: one line per named check, `PASS`, `FAIL` or
//! `NOTE` (a property worth knowing that is not a requirement, such as
//! whether a lock survives its holder's death), with a sentence saying what
//! was seen. The teachers' page is `docs/conformance.md`.
//!
//! # How a check runs
//! Every check runs in a check runner, a process of its own forked from the
//! test, in private IPC and mount namespaces where Linux allows (see
//! [`runner`]): a child left unreaped, or a named object left behind
//! (whatever its name), fails the check. In the runner, the parent only
//! makes the port's objects (`new`, `pipe`) before forking
//! (`fork(2)`) and drops them afterwards. Every operation that could block runs
//! in a forked child, which reports by its exit code and a sentence written to
//! an anonymous shared mapping (`mmap(2)`, `MAP_SHARED | MAP_ANONYMOUS`). The
//! parent waits for each child with a deadline (`waitpid(2)`, polling a pidfd);
//! a child still running at the deadline is killed (`kill(2)`, `SIGKILL`) and
//! reaped, and the check fails saying so. So a port that hangs fails its check
//! instead of hanging the student's test.
//!
//! That deadline is the generic [`CHECK_DEADLINE`] (30 s for all the
//! children of a check), a guard against hangs, except where a bound follows
//! from what the check tests:
//! - a wait that must give up (every check built on [`CROSSING_TIMEOUTS`])
//!   is published on a `Watch` and must return within its timeout plus
//!   [`TIMEOUT_SLACK`], counted from when the parent saw it start (never
//!   stricter than the per-wait bound the check asserts anyway); past that,
//!   the child is killed and the check fails saying the call did not return
//!   within its timeout plus the slack;
//! - children that wait for each other through a `Board` are finished
//!   with `finish_all_or_stop` where one's failure leaves the other
//!   waiting for a step that never comes (`joinable`): once one has failed,
//!   the others are stopped at once.
//!
//! # What a port must allow
//! Its methods are called in children forked from a test binary, which is
//! multi-threaded. The port must therefore work after `fork(2)` in the child
//! of a multi-threaded process: no lock another thread may hold (no `println!`,
//! no `std::sync::Mutex` shared with threads), no thread of its own that the
//! child would lack. Allocating is fine on glibc and macOS (their `malloc`
//! resets its locks in the child of `fork`), and so are system calls and
//! process-shared pthread objects in shared memory. Objects are made in the
//! parent before the fork and inherited, as in the Python tutorials.
//!
//! Timeouts given to a port are always `Some`: [`SHORT_TIMEOUT`] where the
//! operation is expected to give up, [`LONG_TIMEOUT`] where it is expected to
//! succeed, and [`CROSSING_TIMEOUTS`] started just before a second boundary
//! where a deadline must be computed right.
//!
//! # Errors
//! A port returns [`crate::Error`]. The suites look at the kind only
//! (`Timeout`, `Empty`, `Full`, `Closed`, `Eof`); any other error fails the
//! check and shows its message. `?` converts `std::io::Error` and
//! `nix::Error` ([`crate::Errno`]); [`Error::other`](crate::Error::other)
//! carries a port's own message; [`Error::timeout`](crate::Error::timeout)
//! makes a timeout without fields the suites ignore.

pub mod joinable;
pub mod lock;
pub mod manager;
pub mod pipe;
pub mod pool;
pub mod priority;
pub mod process;
pub mod queue;
pub mod rlock;
pub mod runner;
pub mod semaphore;
pub mod shared;
pub mod typed;

use crate::audit::Scope;
use crate::error::Error;
use crate::process::{self as os_process, ChildGuard, ExitStatus, Fork};
use crate::shm::{AnonMapping, SharedRegion};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The timeout passed to an operation that is expected to give up (a `get`
/// on an empty queue, an `acquire` of a lock another process holds).
pub const SHORT_TIMEOUT: Duration = Duration::from_millis(200);

/// The timeout passed to an operation that is expected to succeed.
pub const LONG_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an operation that is expected to give up or fail may take.
pub const OP_DEADLINE: Duration = Duration::from_secs(5);

/// How long all the children of one check may take together before the
/// stragglers are killed and the check fails.
pub const CHECK_DEADLINE: Duration = Duration::from_secs(30);

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The port behaved as the mechanism requires.
    Pass,
    /// It did not (or the check could not run, or left a child unreaped).
    Fail,
    /// A property reported for information, not a requirement (Python's own
    /// mechanism may lack it); only its setup and cleanup can fail.
    Noted,
}

/// One named check of a suite and what it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The check's name (`fifo_order`, `mutual_exclusion`, ...).
    pub name: String,
    /// Pass, fail, or a noted property.
    pub status: Status,
    /// A sentence saying what was seen.
    pub detail: String,
}

/// The result of a suite: every check it ran, in order.
#[derive(Clone, PartialEq, Eq)]
pub struct Report {
    /// The suite's name (`queue`, `lock`, `pipe`).
    pub suite: &'static str,
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
}

/// What a check (or a child of it) concluded: `Ok(what was seen)` or
/// `Err(what went wrong)`.
pub(crate) type Verdict = std::result::Result<String, String>;

impl Report {
    /// An empty report for `suite`.
    pub fn new(suite: &'static str) -> Report {
        Report {
            suite,
            checks: Vec::new(),
        }
    }

    /// True when no check failed (noted properties do not count).
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.status != Status::Fail)
    }

    /// The names of the checks that failed, in the order they ran (what a
    /// test of a deliberately broken port compares with the checks it should
    /// fail).
    pub fn failed(&self) -> Vec<&str> {
        let fails = self.checks.iter().filter(|c| c.status == Status::Fail);
        fails.map(|c| c.name.as_str()).collect()
    }

    /// The check named `name`, if the suite ran it.
    pub fn get(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// `Ok(self)` when every check passed, `Err(self)` otherwise: what
    /// `check::<P>()` returns, so that `.unwrap()` prints the whole report.
    pub fn into_result(self) -> std::result::Result<Report, Report> {
        if self.passed() { Ok(self) } else { Err(self) }
    }

    /// Runs one check under a fresh [`Scope`]: `body` forks the children and
    /// concludes; anything the scope still sees afterwards fails the check.
    #[cfg(test)]
    pub(crate) fn run(&mut self, name: &str, body: impl FnOnce(&mut Scope) -> Verdict) {
        self.record(name, Status::Pass, body);
    }

    /// Like [`run`](Self::run) for a reported property: a conclusion is
    /// [`Status::Noted`], only an error is a failure.
    #[cfg(test)]
    pub(crate) fn note(&mut self, name: &str, body: impl FnOnce(&mut Scope) -> Verdict) {
        self.record(name, Status::Noted, body);
    }

    /// Runs `body` in a check runner (see [`runner`]): its children reaped,
    /// every named object it made removed, or the check fails.
    fn record(&mut self, name: &str, ok: Status, body: impl FnOnce(&mut Scope) -> Verdict) {
        let verdict = runner::run(body);
        self.checks.push(conclude(name, ok, verdict, &[]));
    }
}

/// One check of a suite, not yet run: its name, the sentence saying what
/// must hold, and the work.
pub struct Entry {
    /// The check's name, as the test the macro makes for it is named.
    pub name: String,
    /// What must hold, in the catalogue's words.
    pub expected: String,
    noted: bool,
    body: Box<dyn FnOnce(&mut Scope) -> Verdict>,
}

impl Entry {
    /// A check the port must pass.
    pub(crate) fn required(
        name: impl Into<String>,
        expected: impl Into<String>,
        body: impl FnOnce(&mut Scope) -> Verdict + 'static,
    ) -> Entry {
        let (name, expected) = (name.into(), expected.into());
        let body = Box::new(body);
        Entry {
            name,
            expected,
            noted: false,
            body,
        }
    }

    /// A property reported as a NOTE (see [`Status::Noted`]).
    pub(crate) fn noted(
        name: impl Into<String>,
        expected: impl Into<String>,
        body: impl FnOnce(&mut Scope) -> Verdict + 'static,
    ) -> Entry {
        Entry {
            noted: true,
            ..Entry::required(name, expected, body)
        }
    }

    fn run(self, report: &mut Report) {
        let ok = if self.noted {
            Status::Noted
        } else {
            Status::Pass
        };
        report.record(&self.name, ok, self.body);
    }
}

/// Runs every entry in order: the whole report of `suite` (`Err` if a
/// check failed). Each suite's `check` is this over all its `checks`; pass
/// fewer to run fewer.
pub fn check_all(suite: &'static str, entries: Vec<Entry>) -> std::result::Result<Report, Report> {
    let mut report = Report::new(suite);
    for entry in entries {
        entry.run(&mut report);
    }
    report.into_result()
}

/// The names of `entries`, in order (what [`conformance_tests!`](crate::conformance_tests)
/// must make one test each for).
pub fn names(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.name.as_str()).collect()
}

/// Runs the one check of `suite` named `name`, as the test that
/// [`conformance_tests!`](crate::conformance_tests) made for it does: returns
/// if it passed (a NOTE is printed), panics with what was expected and what
/// was seen otherwise.
pub fn run_one(suite: &'static str, entries: Vec<Entry>, name: &str) {
    let Some(entry) = entries.into_iter().find(|e| e.name == name) else {
        panic!("the {suite} suite has no check named `{name}`");
    };
    let expected = entry.expected.clone();
    let mut report = Report::new(suite);
    entry.run(&mut report);
    let check = &report.checks[0];
    match check.status {
        Status::Pass => {}
        Status::Noted => println!("NOTE {suite}::{name}: {}", check.detail),
        Status::Fail => panic!(
            "conformance check {suite}::{name} FAILED\n  expected: {expected}\n  actual:   {}",
            check.detail
        ),
    }
}

/// Expands to one `#[test]` per check of a suite, in a module named after
/// the suite, so that each check can be run, filtered and skipped by name
/// (`cargo test queue::fifo_order`, `cargo test -- --skip unbounded`,
/// `cargo nextest run -E 'test(fifo_order)'`).
///
/// ```ignore
/// struct MyQueue { /* ... */ }
/// impl ipckit::conformance::queue::QueuePort for MyQueue { /* ... */ }
/// ipckit::conformance_tests!(queue, MyQueue); // tests queue::fifo_order, ...
/// ```
///
/// The suites: `queue`, `joinable`, `lock`, `rlock`, `semaphore`, `pipe`,
/// `priority`, `typed`, `shared`, `manager`, `process`, `pool`. The port's type is named from
/// inside the new module, which glob-imports its parent (`use super::*`): name
/// it as the parent module sees it. The module also holds a test
/// `every_check_has_a_test` that fails if the suite has a check this macro
/// does not list.
#[macro_export]
macro_rules! conformance_tests {
    (queue, $port:ty) => {
        $crate::__conformance_suite!(
            queue,
            $port,
            [
                fifo_order,
                unbounded,
                put_on_full_is_full,
                get_on_empty_is_empty,
                get_timeout_crossing_a_second,
                producers_consumer,
                close_drains_then_closed,
                close_seen_by_another_process
            ]
        );
    };
    (lock, $port:ty) => {
        $crate::__conformance_suite!(
            lock,
            $port,
            [
                mutual_exclusion,
                timeout_while_held,
                timeout_crossing_a_second,
                holder_killed
            ]
        );
    };
    (rlock, $port:ty) => {
        $crate::__conformance_suite!(
            rlock,
            $port,
            [
                mutual_exclusion,
                timeout_while_held,
                timeout_crossing_a_second,
                holder_killed,
                reentrant_in_one_process,
                excludes_others_until_fully_released
            ]
        );
    };
    (joinable, $port:ty) => {
        $crate::__conformance_suite!(
            joinable,
            $port,
            [
                join_waits_for_every_task_done,
                task_done_more_than_put_is_an_error,
                join_on_an_empty_queue_returns_at_once
            ]
        );
    };
    (process, $port:ty) => {
        $crate::__conformance_suite!(
            process,
            $port,
            [
                join_waits_for_the_exit,
                join_timeout_returns_while_alive,
                exitcode_is_minus_the_signal,
                daemon_ends_with_its_parent
            ]
        );
    };
    (shared, $port:ty) => {
        $crate::__conformance_suite!(
            shared,
            $port,
            [
                made_as_given,
                child_writes_are_visible_to_the_parent,
                typecodes_hold_their_c_types,
                updates_under_the_lock_all_count,
                lost_update_without_the_lock
            ]
        );
    };
    (manager, $port:ty) => {
        $crate::__conformance_suite!(
            manager,
            $port,
            [
                list_update_seen_by_every_process,
                dict_update_seen_by_every_process,
                namespace_update_seen_and_printed,
                atomic_update_from_several_processes,
                racy_get_then_set
            ]
        );
    };
    (pool, $port:ty) => {
        $crate::__conformance_suite!(
            pool,
            $port,
            [
                apply_async_get_returns_the_value,
                get_timeout_on_a_slow_task,
                map_equals_a_sequential_map,
                a_killed_worker_does_not_hang_the_pool,
                close_and_join_reap_every_worker
            ]
        );
    };
    (semaphore, $port:ty) => {
        $crate::__conformance_suite!(
            semaphore,
            $port,
            [
                acquire_counts_down_and_blocks_at_zero,
                release_wakes_a_waiter_in_another_process,
                at_most_n_holders,
                acquire_timeout_crossing_a_second,
                bounded_release_above_initial_fails
            ]
        );
    };
    (priority, $port:ty) => {
        $crate::__conformance_suite!(
            priority,
            $port,
            [
                priority_order,
                fifo_within_a_priority,
                create_exclusive_refuses_an_existing_name,
                close_is_not_unlink,
                receive_timeout_crossing_a_second
            ]
        );
    };
    (typed, $port:ty) => {
        $crate::__conformance_suite!(
            typed,
            $port,
            [
                type_zero_takes_the_oldest,
                positive_type_takes_the_first_of_that_type,
                negative_type_takes_the_lowest_type_up_to,
                messages_cross_processes
            ]
        );
    };
    (pipe, $port:ty) => {
        $crate::__conformance_suite!(
            pipe,
            $port,
            [
                one_way_0_simplex,
                one_way_1_simplex,
                one_way_65537_simplex,
                one_way_1048576_simplex,
                echo_0_duplex,
                echo_1_duplex,
                echo_65537_duplex,
                echo_1048576_duplex,
                duplex_directions_independent,
                eof_after_peer_closed_simplex,
                eof_after_peer_closed_duplex,
                recv_timeout_on_a_silent_peer
            ]
        );
    };
}

/// The body of [`conformance_tests!`]: one module, one test per check.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_suite {
    ($suite:ident, $port:ty, [$($check:ident),+ $(,)?]) => {
        mod $suite {
            #[allow(unused_imports)]
            use super::*;

            $(
                #[test]
                fn $check() {
                    $crate::conformance::$suite::test::<$port>(stringify!($check));
                }
            )+

            #[test]
            fn every_check_has_a_test() {
                let listed = [$(stringify!($check)),+];
                let entries = $crate::conformance::$suite::checks::<$port>();
                assert_eq!($crate::conformance::names(&entries), listed);
            }
        }
    };
}

/// Turns a verdict and the scope's leftovers into a [`Check`].
fn conclude(name: &str, ok: Status, verdict: Verdict, leftovers: &[String]) -> Check {
    let (mut status, mut detail) = match verdict {
        Ok(detail) => (ok, detail),
        Err(detail) => (Status::Fail, detail),
    };
    if !leftovers.is_empty() {
        status = Status::Fail;
        detail = format!("{detail}; left behind: {}", leftovers.join(", "));
    }
    Check {
        name: name.to_string(),
        status,
        detail,
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = |s| self.checks.iter().filter(|c| c.status == s).count();
        let verdict = if self.passed() { "PASS" } else { "FAIL" };
        writeln!(
            f,
            "{} conformance: {verdict} ({} passed, {} failed, {} noted)",
            self.suite,
            count(Status::Pass),
            count(Status::Fail),
            count(Status::Noted)
        )?;
        for c in &self.checks {
            let word = match c.status {
                Status::Pass => "PASS",
                Status::Fail => "FAIL",
                Status::Noted => "NOTE",
            };
            writeln!(f, "  {word}  {}: {}", c.name, c.detail)?;
        }
        Ok(())
    }
}

/// The same as `Display`, so that `check::<P>().unwrap()` prints a readable list.
impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Report {}

/// Turns a failed setup step of the parent into a check's failure.
pub(crate) fn setup<T>(what: &str, result: crate::Result<T>) -> std::result::Result<T, String> {
    result.map_err(|e| format!("{what} failed: {e}"))
}

/// An operation's result in words: the value, or the error's message.
pub(crate) fn show<T: fmt::Debug>(r: &crate::Result<T>) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("`{e}`"),
    }
}

/// The instant by which every child of a check starting now must be done.
pub(crate) fn deadline() -> Instant {
    Instant::now() + CHECK_DEADLINE
}

// ---------------------------------------------------------------------------
// Children: forked, reporting through shared memory, waited for with a deadline.

/// The exit code of a child whose work panicked.
const PANICKED: i32 = 3;

/// Bytes of sentence a child can hand back.
const MAILBOX: usize = 4096;

/// A forked child of a check, with the shared page it writes its sentence to.
pub(crate) struct Child {
    guard: ChildGuard,
    mailbox: Mailbox,
    role: &'static str,
}

/// Forks a child (tracked by `scope`) that runs `work`; its verdict comes back
/// through [`Child::finish`].
pub(crate) fn spawn(
    scope: &mut Scope,
    role: &'static str,
    work: impl FnOnce() -> Verdict,
) -> std::result::Result<Child, String> {
    spawn_with(scope, role, (), (), |()| work()).map(|(child, ())| child)
}

/// Like [`spawn`], with a mailbox of `bytes` for the child's sentence.
pub(crate) fn spawn_sized(
    scope: &mut Scope,
    role: &'static str,
    bytes: usize,
    work: impl FnOnce() -> Verdict,
) -> std::result::Result<Child, String> {
    fork_child(scope, role, bytes, (), (), |()| work()).map(|(child, ())| child)
}

/// Forks a child that owns `keep` and first drops `other`; the parent drops
/// `keep` and gets `other` back. That is how an end of a pipe goes to exactly
/// one process: each side closes (drops) the ends it does not use.
pub(crate) fn spawn_with<K, D>(
    scope: &mut Scope,
    role: &'static str,
    keep: K,
    other: D,
    work: impl FnOnce(K) -> Verdict,
) -> std::result::Result<(Child, D), String> {
    fork_child(scope, role, MAILBOX, keep, other, work)
}

fn fork_child<K, D>(
    scope: &mut Scope,
    role: &'static str,
    bytes: usize,
    keep: K,
    other: D,
    work: impl FnOnce(K) -> Verdict,
) -> std::result::Result<(Child, D), String> {
    let mailbox = Mailbox::new(bytes)?;
    // SAFETY: the child only runs the port's operations and the suite's own
    // checks (atomics and memcpy in shared memory, clock reads, sleeps,
    // allocation: see the module documentation), then `_exit`s.
    match unsafe { os_process::fork_raw() }
        .map_err(|e| format!("fork for the {role} failed: {e}"))?
    {
        Fork::Child => {
            die_with_parent();
            drop(other);
            let verdict = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(keep)));
            let code = match verdict {
                Ok(Ok(seen)) => mailbox.write(&seen, 0),
                Ok(Err(wrong)) => mailbox.write(&wrong, 1),
                Err(_) => PANICKED,
            };
            os_process::exit_immediately(code)
        }
        Fork::Parent(guard) => {
            drop(keep);
            scope.track(guard.pid());
            let child = Child {
                guard,
                mailbox,
                role,
            };
            Ok((child, other))
        }
    }
}

impl Child {
    /// Waits until `by` at the latest (a child still running then is killed
    /// with `SIGKILL` and reaped) and returns the child's verdict.
    pub(crate) fn finish(mut self, by: Instant) -> Verdict {
        let left = by.saturating_duration_since(Instant::now());
        let waited = self
            .guard
            .wait_deadline(left.max(Duration::from_millis(100)));
        self.verdict(waited)
    }

    /// Like [`finish`](Self::finish) for a child that times its waits with
    /// `watch` (see [`Watch`]): a wait still running [`TIMEOUT_SLACK`] after
    /// its timeout (counted from when the parent saw it start) gets the child
    /// killed and reaped, and the check fails saying the call did not return
    /// within its timeout plus the slack.
    pub(crate) fn finish_watched(mut self, watch: &Watch, by: Instant) -> Verdict {
        let mut seen = (0, Instant::now());
        loop {
            let sequence = watch.sequence();
            if sequence != seen.0 {
                seen = (sequence, Instant::now());
            }
            let timeout = watch.timeout();
            let overran = sequence % 2 == 1 && seen.1.elapsed() > timeout + TIMEOUT_SLACK;
            if overran || Instant::now() >= by {
                let waited = self.guard.wait_deadline(Duration::ZERO);
                if overran && matches!(waited, Err(Error::Timeout { .. })) {
                    return Err(format!(
                        "{}: a call with a {timeout:?} timeout did not return within its timeout plus {TIMEOUT_SLACK:?} of slack: killed and reaped",
                        self.role
                    ));
                }
                return self.verdict(waited);
            }
            match self.guard.wait_timeout(Duration::from_millis(5)) {
                Ok(None) => {}
                Ok(Some(status)) => return self.verdict(Ok(status)),
                Err(e) => return self.verdict(Err(e)),
            }
        }
    }

    /// Kills and reaps a child still running after another child of its
    /// check failed.
    fn stop_after_a_failure(&mut self) -> Verdict {
        match self.guard.wait_deadline(Duration::ZERO) {
            Err(Error::Timeout { .. }) => Err(format!(
                "{} was stopped (killed and reaped) after another process of the check failed",
                self.role
            )),
            waited => self.verdict(waited),
        }
    }

    /// The child's verdict from how waiting for it ended.
    fn verdict(&self, waited: crate::Result<ExitStatus>) -> Verdict {
        let role = self.role;
        match waited {
            Ok(ExitStatus::Exited(0)) => Ok(self.mailbox.read()),
            Ok(ExitStatus::Exited(1)) => match self.mailbox.read() {
                said if said.is_empty() => Err(format!("{role} exited with status 1")),
                said => Err(format!("{role}: {said}")),
            },
            Ok(ExitStatus::Exited(PANICKED)) => Err(format!("{role}: the port panicked")),
            Ok(status) => Err(format!("{role} {status}")),
            Err(Error::Timeout { .. }) => Err(format!(
                "{role} was still running at the check's deadline (a call that blocked?): killed and reaped"
            )),
            Err(e) => Err(format!("waiting for the {role}: {e}")),
        }
    }

    /// Kills the child with `SIGKILL` and reaps it.
    pub(crate) fn kill(mut self) -> std::result::Result<(), String> {
        let role = self.role;
        let killed = self.guard.signal(nix::sys::signal::Signal::SIGKILL);
        killed.map_err(|e| format!("killing the {role}: {e}"))?;
        match self.guard.wait_deadline(OP_DEADLINE) {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("reaping the killed {role}: {e}")),
        }
    }

    /// Waits until slot `i` of `board` is non-zero, as the child sets it when
    /// it got somewhere (e.g. holds the lock). Fails if the child exits first
    /// or `by` passes.
    pub(crate) fn wait_for_slot(
        &mut self,
        board: &Board,
        i: usize,
        by: Instant,
    ) -> std::result::Result<(), String> {
        while board.get(i) == 0 {
            if matches!(self.guard.try_wait(), Ok(Some(_)) | Err(_)) {
                let said = self.mailbox.read();
                return Err(format!(
                    "the {} ended before it was ready: {said}",
                    self.role
                ));
            }
            if Instant::now() >= by {
                return Err(format!("the {} was never ready", self.role));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }
}

/// In a just-forked child: be killed (`SIGKILL`) if the process that forked
/// it dies (`prctl(2)`, `PR_SET_PDEATHSIG`), so that a check runner killed at
/// its deadline leaves none of its children running.
fn die_with_parent() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and nothing else.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
}

/// Waits until `child` is asleep (state `S` in `/proc/<pid>/stat`): blocked
/// in the call the check is about. Fails if it ends first or `by` passes.
/// Where process states cannot be read (macOS), waits 200 ms instead.
pub(crate) fn wait_until_asleep(child: &Child, by: Instant) -> std::result::Result<(), String> {
    let role = child.role;
    loop {
        match os_process::state_of(child.guard.pid()) {
            Ok(Some('S')) => return Ok(()),
            Ok(Some('Z') | None) => return Err(format!("the {role} ended before it blocked")),
            Ok(Some(_)) => {}
            Err(_) => {
                std::thread::sleep(Duration::from_millis(200));
                return Ok(());
            }
        }
        if Instant::now() >= by {
            return Err(format!("the {role} never blocked"));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Finishes every child (by the same deadline); all their sentences, joined.
pub(crate) fn finish_all(children: Vec<Child>, by: Instant) -> Verdict {
    all_of(children.into_iter().map(|child| child.finish(by)))
}

/// Like [`finish_all`], but once one child has failed, the others still
/// running are killed and reaped at once instead of at `by`: they wait for a
/// step the failed one will never take (a board slot it never sets), and the
/// check has failed anyway.
pub(crate) fn finish_all_or_stop(children: Vec<Child>, by: Instant) -> Verdict {
    let mut verdicts: Vec<Option<Verdict>> = children.iter().map(|_| None).collect();
    let mut children: Vec<Option<Child>> = children.into_iter().map(Some).collect();
    while verdicts.iter().any(Option::is_none) {
        let failed = verdicts.iter().any(|v| matches!(v, Some(Err(_))));
        for (slot, verdict) in children.iter_mut().zip(verdicts.iter_mut()) {
            let Some(child) = slot.as_mut() else { continue };
            *verdict = match child.guard.try_wait() {
                Ok(None) if failed => Some(child.stop_after_a_failure()),
                Ok(None) if Instant::now() >= by => {
                    let waited = child.guard.wait_deadline(Duration::ZERO);
                    Some(child.verdict(waited))
                }
                Ok(None) => continue,
                Ok(Some(status)) => Some(child.verdict(Ok(status))),
                Err(e) => Some(child.verdict(Err(e))),
            };
            *slot = None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    all_of(verdicts.into_iter().flatten())
}

/// One verdict from several: `Ok` with the non-empty sentences if all are
/// `Ok`, otherwise `Err` with every failure.
pub(crate) fn all_of(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
    let (mut seen, mut wrong) = (Vec::new(), Vec::new());
    for verdict in verdicts {
        match verdict {
            Ok(s) if s.is_empty() => {}
            Ok(s) => seen.push(s),
            Err(w) => wrong.push(w),
        }
    }
    if wrong.is_empty() {
        Ok(seen.join("; "))
    } else {
        Err(wrong.join("; "))
    }
}

/// A page of shared memory a child writes one sentence to: a length word,
/// stored after the bytes, then the bytes.
struct Mailbox(AnonMapping, usize);

impl Mailbox {
    fn new(bytes: usize) -> std::result::Result<Mailbox, String> {
        AnonMapping::new(bytes)
            .map(|m| Mailbox(m, bytes))
            .map_err(|e| format!("a page for a child's report: {e}"))
    }

    fn len_word(&self) -> &AtomicU64 {
        let ptr = self
            .0
            .place::<AtomicU64>(0)
            .expect("the length word fits a page");
        // SAFETY: in bounds and aligned (checked by `place`); zeroed memory is
        // a valid AtomicU64; the mapping lives as long as `self`.
        unsafe { &*ptr }
    }

    /// Copies `text` (cut at a character boundary to fit) in; returns `code`.
    fn write(&self, text: &str, code: i32) -> i32 {
        let mut n = text.len().min(self.1 - 8);
        while !text.is_char_boundary(n) {
            n -= 1;
        }
        // SAFETY: offset 8 is inside the mapping (its size is more than 8).
        let at = unsafe { self.0.as_ptr().add(8) };
        // SAFETY: bytes 8..8+n lie inside the mapping (n <= its size - 8); only
        // this child writes them, and the parent reads them after it exited.
        unsafe { std::ptr::copy_nonoverlapping(text.as_ptr(), at, n) };
        self.len_word().store(n as u64, Ordering::Release);
        code
    }

    fn read(&self) -> String {
        let n = (self.len_word().load(Ordering::Acquire) as usize).min(self.1 - 8);
        // SAFETY: offset 8 is inside the mapping (its size is more than 8).
        let at = unsafe { self.0.as_ptr().add(8) };
        // SAFETY: bytes 8..8+n are inside the mapping and were written before
        // the length was stored.
        let bytes = unsafe { std::slice::from_raw_parts(at, n) };
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// The timed wait a child is in, published in two slots of shared memory so
/// that the parent ([`Child::finish_watched`]) can give that wait a deadline
/// of its own: its timeout plus [`TIMEOUT_SLACK`], instead of the check's
/// [`CHECK_DEADLINE`]. A sequence number, odd while a wait runs, and the
/// wait's timeout in nanoseconds.
pub(crate) struct Watch(Board);

impl Watch {
    /// A watch with no wait started, made before the fork.
    pub(crate) fn new() -> std::result::Result<Watch, String> {
        Board::new(2).map(Watch)
    }

    /// In the child: a wait with `timeout` starts now.
    fn start(&self, timeout: Duration) {
        self.0.set(1, timeout.as_nanos() as u64);
        self.0.at(0).fetch_add(1, Ordering::SeqCst);
    }

    /// In the child: the wait returned.
    fn stop(&self) {
        self.0.at(0).fetch_add(1, Ordering::SeqCst);
    }

    fn sequence(&self) -> u64 {
        self.0.get(0)
    }

    fn timeout(&self) -> Duration {
        Duration::from_nanos(self.0.get(1))
    }
}

/// A few `AtomicU64` slots in an anonymous shared mapping made before the
/// fork, for parent and children to signal each other and count.
pub(crate) struct Board(AnonMapping);

impl Board {
    /// `n` slots, all 0.
    pub(crate) fn new(n: usize) -> std::result::Result<Board, String> {
        AnonMapping::new(n * 8)
            .map(Board)
            .map_err(|e| format!("shared slots: {e}"))
    }

    /// Slot `i`.
    pub(crate) fn at(&self, i: usize) -> &AtomicU64 {
        let ptr = self.0.place::<AtomicU64>(i * 8).expect("slot in range");
        // SAFETY: in bounds and aligned (checked by `place`); zeroed memory is
        // a valid AtomicU64; the mapping lives as long as `self`.
        unsafe { &*ptr }
    }

    /// The value of slot `i`.
    pub(crate) fn get(&self, i: usize) -> u64 {
        self.at(i).load(Ordering::SeqCst)
    }

    /// Sets slot `i`.
    pub(crate) fn set(&self, i: usize, value: u64) {
        self.at(i).store(value, Ordering::SeqCst);
    }

    /// In a child: waits until slot `i` is non-zero (false after `patience`).
    pub(crate) fn wait_for(&self, i: usize, patience: Duration) -> bool {
        let start = Instant::now();
        while self.get(i) == 0 {
            if start.elapsed() > patience {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }
}

// ---------------------------------------------------------------------------
// Expectations children check.

/// The error a check expects from an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    Full,
    Empty,
    Closed,
    Timeout,
    Eof,
}

impl Expect {
    fn matches(self, e: &Error) -> bool {
        matches!(
            (self, e),
            (Expect::Full, Error::Full(_))
                | (Expect::Empty, Error::Empty(_))
                | (Expect::Closed, Error::Closed(_))
                | (Expect::Timeout, Error::Timeout { .. })
                | (Expect::Eof, Error::Eof(_))
        )
    }
}

/// The timeouts given to an operation that must give up, to check its
/// deadline: one under a second and one over. Each is started twice, once
/// when the fraction of a second of `CLOCK_REALTIME` is 0.9 and once when
/// that of `CLOCK_MONOTONIC` is (`clock_gettime(2)`), so `now + timeout`
/// crosses a second boundary every time, whichever clock the port uses: a
/// deadline that adds seconds and nanoseconds without carrying gets
/// `tv_nsec` of a second or more, which `sem_timedwait(3)`,
/// `pthread_mutex_timedlock(3)` or `mq_timedreceive(3)` refuse (`EINVAL`).
/// Each wait must take at least 9/10 of its timeout and at most
/// [`TIMEOUT_SLACK`] more.
pub const CROSSING_TIMEOUTS: [Duration; 2] =
    [Duration::from_millis(250), Duration::from_millis(1250)];

/// How much longer than its timeout an operation may take to give up.
pub const TIMEOUT_SLACK: Duration = Duration::from_secs(2);

/// Checks that `op(timeout)` fails with `want` after waiting about its
/// timeout, for each of [`CROSSING_TIMEOUTS`], each started twice: once when
/// the fraction of a second of `CLOCK_REALTIME` is 0.9, once when that of
/// `CLOCK_MONOTONIC` is (`clock_gettime(2)`). So the deadline `now + timeout`
/// crosses a second boundary every time, whichever clock the port uses: a
/// deadline that adds seconds and nanoseconds without carrying gets
/// `tv_nsec` of a second or more, which `sem_timedwait(3)`,
/// `pthread_mutex_timedlock(3)` or `mq_timedreceive(3)` refuse (`EINVAL`).
/// Each wait must take at least 9/10 of its timeout and at most
/// [`TIMEOUT_SLACK`] more.
///
/// Each wait is published on `watch`, so that the parent, finishing this
/// child with [`Child::finish_watched`], kills it once a wait has run
/// [`TIMEOUT_SLACK`] past its timeout: a port that ignores its timeout fails
/// within seconds, not at the check's [`CHECK_DEADLINE`].
pub(crate) fn expect_timeouts<T: fmt::Debug>(
    watch: &Watch,
    what: &str,
    want: Expect,
    mut op: impl FnMut(Duration) -> crate::Result<T>,
) -> Verdict {
    let mut waits = Vec::new();
    for t in CROSSING_TIMEOUTS {
        for clock in [libc::CLOCK_REALTIME, libc::CLOCK_MONOTONIC] {
            align_to_fraction(clock);
            watch.start(t);
            let (result, took) = timed(|| op(t));
            watch.stop();
            let named = format!("{what} with a {t:?} timeout (started at .9 s)");
            expect_error(&named, want, (result, took), None)?;
            if took < t * 9 / 10 || took > t + TIMEOUT_SLACK {
                return Err(format!(
                    "{named} gave up after {took:.1?}: expected {t:?} to {:?}",
                    t + TIMEOUT_SLACK
                ));
            }
            waits.push(format!("{took:.0?}"));
        }
    }
    Ok(format!(
        "{what}: Error::{want:?} after each timeout of {CROSSING_TIMEOUTS:?}, started at .9 s of the realtime and the monotonic clock (waited {})",
        waits.join(", ")
    ))
}

/// Sleeps until the fraction of a second of `clock` is between 0.9 and 0.95.
fn align_to_fraction(clock: libc::clockid_t) {
    let fraction = || {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: ts is a valid timespec to write to; clock is a known clock.
        unsafe { libc::clock_gettime(clock, &mut ts) };
        ts.tv_nsec as u64
    };
    let target = 900_000_000u64;
    let now = fraction();
    let wait = (target + 1_000_000_000 - now) % 1_000_000_000;
    std::thread::sleep(Duration::from_nanos(wait));
    while !(target..950_000_000).contains(&fraction()) {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs `op` and measures how long it took (`clock_gettime(CLOCK_MONOTONIC)`).
pub(crate) fn timed<T>(op: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = op();
    (out, start.elapsed())
}

/// Checks that `what` failed with the error `want` within [`OP_DEADLINE`]
/// and, if it was given a `timeout` to wait, not before half of it.
pub(crate) fn expect_error<T: fmt::Debug>(
    what: &str,
    want: Expect,
    (result, took): (crate::Result<T>, Duration),
    timeout: Option<Duration>,
) -> Verdict {
    match result {
        Ok(v) => {
            return Err(format!(
                "{what} returned Ok({v:?}) instead of Error::{want:?}"
            ));
        }
        Err(e) if !want.matches(&e) => {
            return Err(format!(
                "{what} failed with `{e}` instead of Error::{want:?}"
            ));
        }
        Err(_) => {}
    }
    if took > OP_DEADLINE {
        return Err(format!("{what} took {took:.1?}, more than {OP_DEADLINE:?}"));
    }
    if let Some(t) = timeout.filter(|t| took < *t / 2) {
        return Err(format!(
            "{what} gave up after {took:.1?}, before waiting its timeout of {t:?}"
        ));
    }
    Ok(format!("{what}: Error::{want:?} after {took:.1?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_left_running_fails_its_check() {
        let mut scope = Scope::new();
        let board = Board::new(1).unwrap();
        let mut child = spawn(&mut scope, "sleeper", || {
            board.wait_for(0, CHECK_DEADLINE);
            Ok(String::new())
        })
        .unwrap();
        let check = conclude("c", Status::Pass, Ok("fine".into()), &scope.leftovers());
        assert_eq!(check.status, Status::Fail, "{check:?}");
        assert!(check.detail.contains("never reaped"), "{check:?}");
        board.set(0, 1);
        child.guard.wait_deadline(CHECK_DEADLINE).unwrap();
        scope.assert_clean();
    }

    #[test]
    fn a_child_reports_its_sentence_and_its_verdict() {
        let mut scope = Scope::new();
        let by = Instant::now() + CHECK_DEADLINE;
        let ok = spawn(&mut scope, "a", || Ok("seen".into())).unwrap();
        assert_eq!(ok.finish(by), Ok("seen".to_string()));
        let bad = spawn(&mut scope, "b", || Err("wrong".into())).unwrap();
        assert_eq!(bad.finish(by), Err("b: wrong".to_string()));
        scope.assert_clean();
    }

    #[test]
    fn a_child_still_running_at_the_deadline_is_killed_and_reaped() {
        let mut scope = Scope::new();
        let board = Board::new(1).unwrap();
        let stuck = spawn(&mut scope, "stuck process", || {
            board.wait_for(0, CHECK_DEADLINE);
            Ok(String::new())
        })
        .unwrap();
        let verdict = stuck.finish(Instant::now() + Duration::from_millis(200));
        let wrong = verdict.unwrap_err();
        assert!(wrong.contains("killed and reaped"), "{wrong}");
        scope.assert_clean();
    }

    #[test]
    fn a_failing_check_run_alone_says_what_was_expected_and_what_was_seen() {
        let entries = vec![
            Entry::required("fine", "all is well", |_| Ok("well".into())),
            Entry::required("broken", "two plus two is four", |_| Err("got five".into())),
        ];
        let run = std::panic::AssertUnwindSafe(|| run_one("demo", entries, "broken"));
        let panic = std::panic::catch_unwind(run);
        let said = *panic.unwrap_err().downcast::<String>().unwrap();
        let want = "conformance check demo::broken FAILED\n  expected: two plus two is four\n  actual:   got five";
        assert_eq!(said, want);
        let fine = vec![Entry::required(
            "fine",
            "all is well",
            |_| Ok("well".into()),
        )];
        run_one("demo", fine, "fine");
    }

    #[test]
    fn the_report_lists_every_check_and_fails_on_one_failure() {
        let mut report = Report::new("demo");
        report.run("good", |_| Ok("fine".into()));
        report.note("property", |_| Ok("noted".into()));
        assert!(report.passed());
        report.run("bad", |_| Err("broken".into()));
        let text = report.to_string();
        assert!(text.starts_with("demo conformance: FAIL (1 passed, 1 failed, 1 noted)"));
        assert!(text.contains("  FAIL  bad: broken"), "{text}");
        assert!(report.into_result().is_err());
    }
}
