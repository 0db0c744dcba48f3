//! The conformance suites, run the way a student runs them: against the kit's
//! own Queue, Lock and Pipe (every check passes), and against deliberately
//! broken ports (the check that should catch each one fails).
//!
//! Each suite forks its own children and proves they were reaped (a leftover
//! fails the check), so these tests only look at the reports. The adapters
//! below are what a student writes for their own port.

use ipckit::Error;
use ipckit::channel::Connection;
use ipckit::conformance::lock::LockPort;
use ipckit::conformance::pipe::PipePort;
use ipckit::conformance::queue::QueuePort;
use ipckit::conformance::{Report, Status, lock, pipe, queue};
use ipckit::queue::{Queue, Wait};
use ipckit::sync::{Lock, MutexGuard};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

// ---------------------------------------------------------------------------
// Adapters for the reference implementations.

/// `ipckit::queue::Queue<u64>` as a [`QueuePort`].
struct KitQueue(Queue<u64>);

fn wait(timeout: Option<Duration>) -> Wait {
    timeout.map_or(Wait::Forever, Wait::For)
}

impl QueuePort for KitQueue {
    fn new(maxsize: usize) -> ipckit::Result<Self> {
        Queue::new(maxsize).map(KitQueue)
    }
    fn put(&self, item: u64, timeout: Option<Duration>) -> ipckit::Result<()> {
        self.0.put(&item, wait(timeout))
    }
    fn get(&self, timeout: Option<Duration>) -> ipckit::Result<u64> {
        self.0.get(wait(timeout))
    }
    fn qsize(&self) -> ipckit::Result<usize> {
        Ok(self.0.qsize())
    }
    fn close(&self) -> ipckit::Result<()> {
        self.0.close()
    }
}

/// `ipckit::sync::Lock` as a [`LockPort`].
struct KitLock(Lock);

impl LockPort for KitLock {
    type Guard<'a> = MutexGuard<'a>;
    fn new() -> ipckit::Result<Self> {
        Lock::new().map(KitLock)
    }
    fn acquire(&self, timeout: Option<Duration>) -> ipckit::Result<MutexGuard<'_>> {
        match timeout {
            None => self.0.acquire(),
            Some(t) => self.0.acquire_timeout(t),
        }
    }
}

/// `ipckit::channel::Connection` as a [`PipePort`].
struct KitPipe(Connection);

impl PipePort for KitPipe {
    fn pipe(duplex: bool) -> ipckit::Result<(Self, Self)> {
        ipckit::channel::connection::pipe(duplex).map(|(a, b)| (KitPipe(a), KitPipe(b)))
    }
    fn send_bytes(&self, bytes: &[u8]) -> ipckit::Result<()> {
        self.0.send_bytes(bytes)
    }
    fn recv_bytes(&self, timeout: Option<Duration>) -> ipckit::Result<Vec<u8>> {
        match timeout {
            None => self.0.recv_bytes(),
            Some(t) => self.0.recv_bytes_timeout(t),
        }
    }
}

// ---------------------------------------------------------------------------
// Deliberately broken ports.

/// Loses every 7th item a process puts (its put still says Ok).
struct DropsEvery7th(KitQueue, AtomicU64);

impl QueuePort for DropsEvery7th {
    fn new(maxsize: usize) -> ipckit::Result<Self> {
        Ok(DropsEvery7th(KitQueue::new(maxsize)?, AtomicU64::new(0)))
    }
    fn put(&self, item: u64, timeout: Option<Duration>) -> ipckit::Result<()> {
        match self.1.fetch_add(1, Ordering::Relaxed) % 7 {
            6 => Ok(()),
            _ => self.0.put(item, timeout),
        }
    }
    fn get(&self, timeout: Option<Duration>) -> ipckit::Result<u64> {
        self.0.get(timeout)
    }
    fn qsize(&self) -> ipckit::Result<usize> {
        self.0.qsize()
    }
    fn close(&self) -> ipckit::Result<()> {
        self.0.close()
    }
}

/// A `close` that does nothing.
struct IgnoresClose(KitQueue);

impl QueuePort for IgnoresClose {
    fn new(maxsize: usize) -> ipckit::Result<Self> {
        KitQueue::new(maxsize).map(IgnoresClose)
    }
    fn put(&self, item: u64, timeout: Option<Duration>) -> ipckit::Result<()> {
        self.0.put(item, timeout)
    }
    fn get(&self, timeout: Option<Duration>) -> ipckit::Result<u64> {
        self.0.get(timeout)
    }
    fn qsize(&self) -> ipckit::Result<usize> {
        self.0.qsize()
    }
    fn close(&self) -> ipckit::Result<()> {
        Ok(())
    }
}

/// Never waits: a timed put or get gives up at once.
struct NeverWaits(KitQueue);

impl QueuePort for NeverWaits {
    fn new(maxsize: usize) -> ipckit::Result<Self> {
        KitQueue::new(maxsize).map(NeverWaits)
    }
    fn put(&self, item: u64, _timeout: Option<Duration>) -> ipckit::Result<()> {
        self.0.put(item, Some(Duration::ZERO))
    }
    fn get(&self, _timeout: Option<Duration>) -> ipckit::Result<u64> {
        self.0.get(Some(Duration::ZERO))
    }
    fn qsize(&self) -> ipckit::Result<usize> {
        self.0.qsize()
    }
    fn close(&self) -> ipckit::Result<()> {
        self.0.close()
    }
}

/// A "lock" that never excludes anyone.
struct NoLock;

impl LockPort for NoLock {
    type Guard<'a> = ();
    fn new() -> ipckit::Result<Self> {
        Ok(NoLock)
    }
    fn acquire(&self, _timeout: Option<Duration>) -> ipckit::Result<()> {
        Ok(())
    }
}

/// A pipe whose receive never reports end-of-file: it waits out its timeout.
struct NeverEof(KitPipe);

impl PipePort for NeverEof {
    fn pipe(duplex: bool) -> ipckit::Result<(Self, Self)> {
        KitPipe::pipe(duplex).map(|(a, b)| (NeverEof(a), NeverEof(b)))
    }
    fn send_bytes(&self, bytes: &[u8]) -> ipckit::Result<()> {
        self.0.send_bytes(bytes)
    }
    fn recv_bytes(&self, timeout: Option<Duration>) -> ipckit::Result<Vec<u8>> {
        match self.0.recv_bytes(timeout) {
            Err(Error::Eof(_)) => {
                let after = timeout.unwrap_or(Duration::from_secs(3600));
                std::thread::sleep(after);
                Err(Error::Timeout {
                    what: "a message".into(),
                    after,
                })
            }
            other => other,
        }
    }
}

/// Sends at most the first 64 KiB of a message.
struct Truncates(KitPipe);

impl PipePort for Truncates {
    fn pipe(duplex: bool) -> ipckit::Result<(Self, Self)> {
        KitPipe::pipe(duplex).map(|(a, b)| (Truncates(a), Truncates(b)))
    }
    fn send_bytes(&self, bytes: &[u8]) -> ipckit::Result<()> {
        self.0.send_bytes(&bytes[..bytes.len().min(64 * 1024)])
    }
    fn recv_bytes(&self, timeout: Option<Duration>) -> ipckit::Result<Vec<u8>> {
        self.0.recv_bytes(timeout)
    }
}

// ---------------------------------------------------------------------------
// The tests.

/// The status of every check, by name, in order.
fn statuses(report: &Report) -> Vec<(&str, Status)> {
    report
        .checks
        .iter()
        .map(|c| (c.name.as_str(), c.status))
        .collect()
}

#[test]
fn the_kit_queue_passes_every_queue_check() {
    let report = queue::check::<KitQueue>().unwrap();
    use Status::Pass;
    assert_eq!(
        statuses(&report),
        [
            ("fifo_order", Pass),
            ("put_on_full_is_full", Pass),
            ("get_on_empty_is_empty", Pass),
            ("producers_consumer", Pass),
            ("close_drains_then_closed", Pass),
        ],
        "{report}"
    );
}

#[test]
fn the_kit_lock_passes_every_lock_check_and_recovers_from_a_killed_holder() {
    let report = lock::check::<KitLock>().unwrap();
    use Status::{Noted, Pass};
    assert_eq!(
        statuses(&report),
        [
            ("mutual_exclusion", Pass),
            ("timeout_while_held", Pass),
            ("holder_killed", Noted),
        ],
        "{report}"
    );
    let noted = &report.get("holder_killed").unwrap().detail;
    // Robust mutexes are Linux only: elsewhere the kit's Lock is as Python's.
    let recovers = cfg!(target_os = "linux");
    assert_eq!(noted.starts_with("recovers"), recovers, "{report}");
}

#[test]
fn the_kit_pipe_passes_every_pipe_check() {
    let report = pipe::check::<KitPipe>().unwrap();
    let names = [
        "one_way_0_simplex",
        "one_way_1_simplex",
        "one_way_65537_simplex",
        "one_way_1048576_simplex",
        "echo_0_duplex",
        "echo_1_duplex",
        "echo_65537_duplex",
        "echo_1048576_duplex",
        "duplex_directions_independent",
        "eof_after_peer_closed_simplex",
        "eof_after_peer_closed_duplex",
    ];
    let want = names.map(|name| (name, Status::Pass));
    assert_eq!(statuses(&report), want, "{report}");
}

/// The names of the checks that failed, in order.
fn failed(report: &Report) -> Vec<&str> {
    let fails = report.checks.iter().filter(|c| c.status == Status::Fail);
    fails.map(|c| c.name.as_str()).collect()
}

#[test]
fn a_queue_that_loses_items_fails_fifo_order_and_producers_consumer() {
    let report = queue::check::<DropsEvery7th>().unwrap_err();
    let want = ["fifo_order", "producers_consumer"];
    assert_eq!(failed(&report), want, "{report}");
}

#[test]
fn a_queue_that_ignores_close_fails_only_the_close_check() {
    let report = queue::check::<IgnoresClose>().unwrap_err();
    assert_eq!(failed(&report), ["close_drains_then_closed"], "{report}");
}

#[test]
fn a_queue_that_never_waits_fails_the_timeouts_and_the_bounded_producers() {
    let report = queue::check::<NeverWaits>().unwrap_err();
    let timeouts = ["put_on_full_is_full", "get_on_empty_is_empty"];
    let want = [&timeouts[..], &["producers_consumer"]].concat();
    assert_eq!(failed(&report), want, "{report}");
}

#[test]
fn a_lock_that_does_nothing_fails_mutual_exclusion_and_the_timeout() {
    let report = lock::check::<NoLock>().unwrap_err();
    let want = ["mutual_exclusion", "timeout_while_held"];
    assert_eq!(failed(&report), want, "{report}");
    let detail = &report.get("timeout_while_held").unwrap().detail;
    assert!(detail.contains("instead of Error::Timeout"), "{report}");
}

#[test]
fn a_pipe_without_end_of_file_fails_both_eof_checks_and_only_those() {
    let report = pipe::check::<NeverEof>().unwrap_err();
    let want = ["simplex", "duplex"].map(|kind| format!("eof_after_peer_closed_{kind}"));
    assert_eq!(failed(&report), want, "{report}");
}

#[test]
fn a_pipe_that_truncates_fails_every_message_over_64_kib() {
    let report = pipe::check::<Truncates>().unwrap_err();
    let want = ["one_way_65537_simplex", "one_way_1048576_simplex"];
    let echoes = ["echo_65537_duplex", "echo_1048576_duplex"];
    assert_eq!(failed(&report), [want, echoes].concat(), "{report}");
}
