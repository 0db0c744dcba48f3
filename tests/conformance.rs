//! The conformance suites, run the way a student runs them: against the kit's
//! own Queue, Lock and Pipe through `conformance_tests!` (one test per check,
//! every one passes), and against deliberately broken ports (exactly the
//! checks that should catch each one fail).
//!
//! Each check runs in a check runner that proves its children were reaped and
//! that no named object was left (a leftover fails the check), so these tests
//! only look at the reports. The adapters below are what a student writes for
//! their own port.

use ipckit::Error;
use ipckit::channel::Connection;
use ipckit::conformance::lock::LockPort;
use ipckit::conformance::pipe::PipePort;
use ipckit::conformance::queue::QueuePort;
use ipckit::conformance::{Report, Status, check_all, lock, pipe, queue};
use ipckit::queue::{Queue, Wait};
#[cfg(target_os = "linux")]
use ipckit::shm::SharedRegion;
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

/// The [`QueuePort`] methods a broken queue keeps from the working one it
/// wraps (`self.0`): `queue_forward!(get, qsize)` in its `impl`.
macro_rules! queue_forward {
    (put) => {
        fn put(&self, item: u64, timeout: Option<Duration>) -> ipckit::Result<()> {
            self.0.put(item, timeout)
        }
    };
    (get) => {
        fn get(&self, timeout: Option<Duration>) -> ipckit::Result<u64> {
            self.0.get(timeout)
        }
    };
    (qsize) => {
        fn qsize(&self) -> ipckit::Result<usize> {
            self.0.qsize()
        }
    };
    (close) => {
        fn close(&self) -> ipckit::Result<()> {
            self.0.close()
        }
    };
    ($($method:ident),+) => {
        $(queue_forward!($method);)+
    };
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

/// Every check of every suite against the kit's own mechanisms, one test
/// each (`cargo test kit::queue::fifo_order`).
mod kit {
    use super::*;
    ipckit::conformance_tests!(queue, KitQueue);
    ipckit::conformance_tests!(lock, KitLock);
    ipckit::conformance_tests!(pipe, KitPipe);
}

/// The lock suite against a lock that is not the kit's (`cargo test sem::`).
#[cfg(target_os = "linux")] // unnamed POSIX semaphores (sem_init) are Linux-only here
mod sem {
    use super::*;
    ipckit::conformance_tests!(lock, SemLock);
}

/// A lock that is not the kit's: a POSIX unnamed semaphore in shared memory
/// (`sem_init(3)` with `pshared`, `sem_timedwait(3)`), as Python's Lock is.
/// With `CARRY` false its deadline adds seconds and nanoseconds without
/// carrying, a real bug: `sem_timedwait` then refuses `tv_nsec >= 1e9`.
#[cfg(target_os = "linux")] // unnamed POSIX semaphores (sem_init) are Linux-only here
struct SemLockOf<const CARRY: bool>(ipckit::shm::AnonMapping);

#[cfg(target_os = "linux")] // unnamed POSIX semaphores (sem_init) are Linux-only here
type SemLock = SemLockOf<true>;
#[cfg(target_os = "linux")] // unnamed POSIX semaphores (sem_init) are Linux-only here
type ForgetsCarry = SemLockOf<false>;

/// Holding a [`SemLockOf`]: dropping posts the semaphore.
#[cfg(target_os = "linux")] // unnamed POSIX semaphores (sem_init) are Linux-only here
struct SemGuard<'a>(&'a ipckit::shm::AnonMapping);

#[cfg(target_os = "linux")] // unnamed POSIX semaphores (sem_init) are Linux-only here
impl Drop for SemGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: the mapping holds a semaphore initialised by `new`.
        unsafe { libc::sem_post(self.0.as_ptr().cast()) };
    }
}

#[cfg(target_os = "linux")] // unnamed POSIX semaphores (sem_init) are Linux-only here
impl<const CARRY: bool> LockPort for SemLockOf<CARRY> {
    type Guard<'a> = SemGuard<'a>;
    fn new() -> ipckit::Result<Self> {
        let map = ipckit::shm::AnonMapping::new(std::mem::size_of::<libc::sem_t>())?;
        // SAFETY: the mapping is large enough and shared, as pshared needs.
        let ret = unsafe { libc::sem_init(map.as_ptr().cast(), 1, 1) };
        if ret != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(SemLockOf(map))
    }
    fn acquire(&self, timeout: Option<Duration>) -> ipckit::Result<SemGuard<'_>> {
        let t = timeout.unwrap_or(Duration::from_secs(3600));
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: ts is a valid timespec to write to.
        unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
        ts.tv_sec += t.as_secs() as libc::time_t;
        ts.tv_nsec += t.subsec_nanos() as libc::c_long;
        if CARRY && ts.tv_nsec >= 1_000_000_000 {
            ts.tv_sec += 1;
            ts.tv_nsec -= 1_000_000_000;
        }
        loop {
            // SAFETY: the mapping holds a semaphore initialised by `new`.
            match unsafe { libc::sem_timedwait(self.0.as_ptr().cast(), &ts) } {
                0 => return Ok(SemGuard(&self.0)),
                _ => match ipckit::Errno::last() {
                    ipckit::Errno::EINTR => continue,
                    ipckit::Errno::ETIMEDOUT => return Err(ipckit::Error::timeout(t)),
                    errno => return Err(errno.into()),
                },
            }
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
    queue_forward!(get, qsize, close);
}

/// A `close` that does nothing.
struct IgnoresClose(KitQueue);

impl QueuePort for IgnoresClose {
    fn new(maxsize: usize) -> ipckit::Result<Self> {
        KitQueue::new(maxsize).map(IgnoresClose)
    }
    fn close(&self) -> ipckit::Result<()> {
        Ok(())
    }
    queue_forward!(put, get, qsize);
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
    queue_forward!(qsize, close);
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

/// A `close` that only the closing process sees: a flag in its own memory.
struct ClosesLocally(KitQueue, std::sync::atomic::AtomicBool);

impl QueuePort for ClosesLocally {
    fn new(maxsize: usize) -> ipckit::Result<Self> {
        Ok(ClosesLocally(KitQueue::new(maxsize)?, Default::default()))
    }
    fn put(&self, item: u64, timeout: Option<Duration>) -> ipckit::Result<()> {
        if self.1.load(Ordering::SeqCst) {
            return Err(Error::Closed("the queue".into()));
        }
        self.0.put(item, timeout)
    }
    fn get(&self, timeout: Option<Duration>) -> ipckit::Result<u64> {
        match self.0.get(timeout) {
            Err(Error::Empty(_)) if self.1.load(Ordering::SeqCst) => {
                Err(Error::Closed("the queue".into()))
            }
            other => other,
        }
    }
    fn close(&self) -> ipckit::Result<()> {
        self.1.store(true, Ordering::SeqCst);
        Ok(())
    }
    queue_forward!(qsize);
}

/// A queue capped at 10 items whatever `maxsize` says, as a POSIX message
/// queue is by the kernel's `msg_max`; `SAYS` is whether it declares it.
struct CappedAt10<const SAYS: bool>(KitQueue);

impl<const SAYS: bool> QueuePort for CappedAt10<SAYS> {
    const CANNOT_BE_UNBOUNDED: Option<&'static str> = if SAYS {
        Some("a POSIX message queue holds at most msg_max (10) messages")
    } else {
        None
    };
    fn new(maxsize: usize) -> ipckit::Result<Self> {
        let cap = if maxsize == 0 { 10 } else { maxsize.min(10) };
        KitQueue::new(cap).map(CappedAt10)
    }
    queue_forward!(put, get, qsize, close);
}

/// Makes a POSIX shared memory object of its own name (no kit prefix) for
/// every queue and never unlinks it.
struct Leaky(KitQueue);

impl QueuePort for Leaky {
    fn new(maxsize: usize) -> ipckit::Result<Self> {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let name = format!("/leaky-port-{}-{n}", std::process::id());
        let c = std::ffi::CString::new(name).unwrap();
        // SAFETY: a plain shm_open of a valid C string.
        let fd = unsafe { libc::shm_open(c.as_ptr(), libc::O_CREAT | libc::O_RDWR, 0o600) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        // SAFETY: fd was just opened here and is not used again.
        unsafe { libc::close(fd) };
        KitQueue::new(maxsize).map(Leaky)
    }
    queue_forward!(put, get, qsize, close);
}

/// A receive that ignores its timeout and blocks until a message or EOF.
struct IgnoresTimeout(KitPipe);

/// A receive that cuts its timeout to whole seconds (250 ms: a poll that
/// returns at once; 1250 ms: 1 s).
struct WholeSeconds(KitPipe);

macro_rules! pipe_wrapper {
    ($port:ident, |$inner:ident, $t:ident| $recv:expr) => {
        impl PipePort for $port {
            fn pipe(duplex: bool) -> ipckit::Result<(Self, Self)> {
                KitPipe::pipe(duplex).map(|(a, b)| ($port(a), $port(b)))
            }
            fn send_bytes(&self, bytes: &[u8]) -> ipckit::Result<()> {
                self.0.send_bytes(bytes)
            }
            fn recv_bytes(&self, $t: Option<Duration>) -> ipckit::Result<Vec<u8>> {
                let $inner = &self.0;
                $recv
            }
        }
    };
}

pipe_wrapper!(IgnoresTimeout, |end, _t| end.recv_bytes(None));
pipe_wrapper!(WholeSeconds, |end, t| end
    .recv_bytes(t.map(|t| Duration::from_secs(t.as_secs()))));

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
fn the_kit_lock_recovers_from_a_killed_holder_on_linux() {
    let mut entries = lock::checks::<KitLock>();
    entries.retain(|e| e.name == "holder_killed");
    let report = check_all("lock", entries).unwrap();
    assert_eq!(statuses(&report), [("holder_killed", Status::Noted)]);
    let noted = &report.get("holder_killed").unwrap().detail;
    // Robust mutexes are Linux only: elsewhere the kit's Lock is as Python's.
    let recovers = cfg!(target_os = "linux");
    assert_eq!(noted.starts_with("recovers"), recovers, "{report}");
}

#[test]
fn the_whole_report_lists_every_check_in_order() {
    let report = queue::check::<CappedAt10<true>>().unwrap();
    let names: Vec<_> = report.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ipckit::conformance::names(&queue::checks::<KitQueue>())
    );
    let unbounded = report.get("unbounded").unwrap();
    assert_eq!(unbounded.status, Status::Noted, "{report}");
    assert!(unbounded.detail.contains("msg_max"), "{report}");
    assert_eq!(report.failed(), Vec::<&str>::new(), "{report}");
}

#[test]
fn a_capped_queue_that_does_not_say_so_fails_only_unbounded() {
    let report = queue::check::<CappedAt10<false>>().unwrap_err();
    assert_eq!(report.failed(), ["unbounded"], "{report}");
}

#[test]
fn a_queue_closed_only_in_the_closing_process_fails_the_other_process_check() {
    let report = queue::check::<ClosesLocally>().unwrap_err();
    assert_eq!(
        report.failed(),
        ["close_seen_by_another_process"],
        "{report}"
    );
}

#[test]
fn a_port_that_leaks_a_named_object_of_its_own_name_fails_every_check() {
    let report = queue::check::<Leaky>().unwrap_err();
    let entries = queue::checks::<KitQueue>();
    let all = ipckit::conformance::names(&entries);
    assert_eq!(report.failed(), all, "{report}");
    for check in &report.checks {
        assert!(check.detail.contains("/leaky-port-"), "{report}");
        assert!(check.detail.contains("was never removed"), "{report}");
    }
}

#[cfg(target_os = "linux")] // unnamed POSIX semaphores (sem_init) are Linux-only here
#[test]
fn a_lock_whose_deadline_forgets_the_carry_fails_the_second_boundary_check() {
    let report = lock::check::<ForgetsCarry>().unwrap_err();
    let fails = report.failed();
    assert!(fails.contains(&"timeout_crossing_a_second"), "{report}");
    // The single 200 ms wait fails too when the clock's fraction is >= .8 s.
    let by_chance = ["timeout_while_held", "timeout_crossing_a_second"];
    assert!(fails.iter().all(|f| by_chance.contains(f)), "{report}");
    let detail = &report.get("timeout_crossing_a_second").unwrap().detail;
    assert!(detail.contains("EINVAL"), "{report}");
}

#[test]
fn a_pipe_that_ignores_its_timeout_fails_the_silent_peer_check_only() {
    let report = pipe::check::<IgnoresTimeout>().unwrap_err();
    assert_eq!(
        report.failed(),
        ["recv_timeout_on_a_silent_peer"],
        "{report}"
    );
    let detail = &report.get("recv_timeout_on_a_silent_peer").unwrap().detail;
    let overran = "a call with a 250ms timeout did not return within its timeout plus 2s of slack";
    assert!(detail.contains(overran), "{report}");
}

#[test]
fn a_pipe_that_cuts_its_timeout_to_whole_seconds_fails_the_silent_peer_check_only() {
    let report = pipe::check::<WholeSeconds>().unwrap_err();
    assert_eq!(
        report.failed(),
        ["recv_timeout_on_a_silent_peer"],
        "{report}"
    );
}

#[test]
fn a_queue_that_loses_items_fails_fifo_order_unbounded_and_producers_consumer() {
    let report = queue::check::<DropsEvery7th>().unwrap_err();
    let want = ["fifo_order", "unbounded", "producers_consumer"];
    assert_eq!(report.failed(), want, "{report}");
}

#[test]
fn a_queue_that_ignores_close_fails_only_the_close_checks() {
    let report = queue::check::<IgnoresClose>().unwrap_err();
    let want = ["close_drains_then_closed", "close_seen_by_another_process"];
    assert_eq!(report.failed(), want, "{report}");
}

#[test]
fn a_queue_that_never_waits_fails_the_timeouts_and_the_bounded_producers() {
    let report = queue::check::<NeverWaits>().unwrap_err();
    let timeouts = [
        "put_on_full_is_full",
        "get_on_empty_is_empty",
        "get_timeout_crossing_a_second",
    ];
    let want = [&timeouts[..], &["producers_consumer"]].concat();
    assert_eq!(report.failed(), want, "{report}");
}

#[test]
fn a_lock_that_does_nothing_fails_mutual_exclusion_and_the_timeouts() {
    let report = lock::check::<NoLock>().unwrap_err();
    let want = [
        "mutual_exclusion",
        "timeout_while_held",
        "timeout_crossing_a_second",
    ];
    assert_eq!(report.failed(), want, "{report}");
    let detail = &report.get("timeout_while_held").unwrap().detail;
    assert!(detail.contains("instead of Error::Timeout"), "{report}");
}

#[test]
fn a_pipe_without_end_of_file_fails_both_eof_checks_and_only_those() {
    let report = pipe::check::<NeverEof>().unwrap_err();
    let want = ["simplex", "duplex"].map(|kind| format!("eof_after_peer_closed_{kind}"));
    assert_eq!(report.failed(), want, "{report}");
}

#[test]
fn a_pipe_that_truncates_fails_every_message_over_64_kib() {
    let report = pipe::check::<Truncates>().unwrap_err();
    let want = ["one_way_65537_simplex", "one_way_1048576_simplex"];
    let echoes = ["echo_65537_duplex", "echo_1048576_duplex"];
    assert_eq!(report.failed(), [want, echoes].concat(), "{report}");
}
