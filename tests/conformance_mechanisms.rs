//! The rlock, joinable-queue, process, semaphore, priority-queue and
//! typed-queue suites, run against the
//! kit's own mechanisms through `conformance_tests!` (every check passes) and
//! against deliberately broken ports (exactly the checks that should catch
//! each one fail). Every check runs in a check runner that proves its
//! children were reaped and its named objects removed.

use ipckit::conformance::joinable::JoinableQueuePort;
use ipckit::conformance::lock::LockPort;
use ipckit::conformance::manager::ManagerPort;
use ipckit::conformance::pool::PoolPort;
#[cfg(target_os = "linux")]
use ipckit::conformance::priority::PriorityQueuePort;
use ipckit::conformance::process::ProcessPort;
use ipckit::conformance::semaphore::SemaphorePort;
use ipckit::conformance::shared::SharedPort;
#[cfg(target_os = "linux")]
use ipckit::conformance::typed::TypedQueuePort;
use ipckit::conformance::{Status, joinable, manager, pool, process, rlock, semaphore, shared};
#[cfg(target_os = "linux")]
use ipckit::conformance::{priority, typed};
use ipckit::queue::{JoinableQueue, Wait};
use ipckit::sync::{BoundedSemaphore, Lock, MutexGuard, PosixSemaphore, RLock, Semaphore};
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Adapters for the reference implementations.

/// `$kit` (one of the kit's semaphores) as a [`SemaphorePort`] called
/// `$port`, bounded or not.
macro_rules! kit_semaphore {
    ($(#[$doc:meta])* $port:ident($kit:ty), bounded: $bounded:literal) => {
        $(#[$doc])*
        struct $port($kit);

        impl SemaphorePort for $port {
            const BOUNDED: bool = $bounded;
            fn new(value: u32) -> ipckit::Result<Self> {
                <$kit>::new(value).map($port)
            }
            fn acquire(&self, timeout: Option<Duration>) -> ipckit::Result<()> {
                match timeout {
                    None => self.0.acquire(),
                    Some(t) => self.0.acquire_timeout(t),
                }
            }
            fn release(&self) -> ipckit::Result<()> {
                self.0.release()
            }
            fn get_value(&self) -> ipckit::Result<u32> {
                self.0.get_value()
            }
        }
    };
}

kit_semaphore!(
    /// `ipckit::sync::Semaphore` as a [`SemaphorePort`].
    KitSemaphore(Semaphore), bounded: false
);
kit_semaphore!(
    /// `ipckit::sync::BoundedSemaphore` as a bounded [`SemaphorePort`].
    KitBounded(BoundedSemaphore), bounded: true
);

/// `ipckit::mq::posix::MessageQueue` as a [`PriorityQueuePort`].
#[cfg(target_os = "linux")]
struct KitMq(ipckit::mq::posix::MessageQueue);

#[cfg(target_os = "linux")]
impl PriorityQueuePort for KitMq {
    fn create_exclusive(name: &str) -> ipckit::Result<Self> {
        use ipckit::mq::posix::{Config, MessageQueue, QueueName};
        MessageQueue::create_exclusive(&QueueName::new(name)?, &Config::default()).map(KitMq)
    }
    fn open(name: &str) -> ipckit::Result<Self> {
        use ipckit::mq::posix::{MessageQueue, QueueName};
        MessageQueue::open_existing(&QueueName::new(name)?).map(KitMq)
    }
    fn send(&self, message: &[u8], priority: u32) -> ipckit::Result<()> {
        self.0.send(message, priority)
    }
    fn receive(&self, timeout: Option<Duration>) -> ipckit::Result<(Vec<u8>, u32)> {
        match timeout {
            None => self.0.receive(),
            Some(t) => self.0.receive_timeout(t),
        }
    }
    fn close(self) -> ipckit::Result<()> {
        self.0.close()
    }
    fn unlink(name: &str) -> ipckit::Result<()> {
        ipckit::mq::posix::unlink(&ipckit::mq::posix::QueueName::new(name)?)
    }
}

/// `ipckit::mq::sysv::QueueOwner` (removed on drop) as a [`TypedQueuePort`].
#[cfg(target_os = "linux")]
struct KitSysv(ipckit::mq::sysv::QueueOwner);

#[cfg(target_os = "linux")]
impl TypedQueuePort for KitSysv {
    fn new() -> ipckit::Result<Self> {
        use ipckit::mq::sysv::{Key, QueueOwner};
        QueueOwner::create(Key::Private, 0o600).map(KitSysv)
    }
    fn send(&self, mtype: i64, data: &[u8]) -> ipckit::Result<()> {
        self.0.send(mtype, data)
    }
    fn try_receive(&self, msgtyp: i64) -> ipckit::Result<(i64, Vec<u8>)> {
        self.0
            .try_receive(ipckit::mq::sysv::Selector::from_raw(msgtyp))
    }
}

/// `ipckit::sync::RLock` (or, with `RE` false, the plain `Lock`) as a
/// [`LockPort`].
struct KitRLock<const RE: bool>(Option<RLock>, Option<Lock>);

impl<const RE: bool> LockPort for KitRLock<RE> {
    type Guard<'a> = MutexGuard<'a>;
    fn new() -> ipckit::Result<Self> {
        match RE {
            true => Ok(KitRLock(Some(RLock::new()?), None)),
            false => Ok(KitRLock(None, Some(Lock::new()?))),
        }
    }
    fn acquire(&self, timeout: Option<Duration>) -> ipckit::Result<MutexGuard<'_>> {
        let lock = self
            .0
            .as_deref()
            .or(self.1.as_ref())
            .expect("one of the two");
        match timeout {
            None => lock.acquire(),
            Some(t) => lock.acquire_timeout(t),
        }
    }
}

fn wait(timeout: Option<Duration>) -> Wait {
    timeout.map_or(Wait::Forever, Wait::For)
}

/// `ipckit::queue::JoinableQueue<u64>` as a [`JoinableQueuePort`].
struct KitJoinable(JoinableQueue<u64>);

impl JoinableQueuePort for KitJoinable {
    fn new(maxsize: usize) -> ipckit::Result<Self> {
        JoinableQueue::new(maxsize).map(KitJoinable)
    }
    fn put(&self, item: u64, timeout: Option<Duration>) -> ipckit::Result<()> {
        self.0.queue().put(&item, wait(timeout))
    }
    fn get(&self, timeout: Option<Duration>) -> ipckit::Result<u64> {
        self.0.queue().get(wait(timeout))
    }
    fn task_done(&self) -> ipckit::Result<()> {
        self.0.task_done()
    }
    fn join(&self, timeout: Option<Duration>) -> ipckit::Result<()> {
        self.0.join(timeout)
    }
}

/// `ipckit::process::Process` as a [`ProcessPort`]; with `DAEMON` false
/// it ignores the daemon flag, with `SHELL` it reports a signal death as a
/// shell does (128 + signal) instead of Python's minus the signal.
struct KitProcess<const DAEMON: bool, const SHELL: bool>(ipckit::process::Process);

type GoodProcess = KitProcess<true, false>;

impl<const DAEMON: bool, const SHELL: bool> ProcessPort for KitProcess<DAEMON, SHELL> {
    fn new(target: fn()) -> Self {
        KitProcess(ipckit::process::Process::new(target))
    }
    fn set_daemon(&mut self, daemon: bool) -> ipckit::Result<()> {
        match DAEMON {
            true => self.0.set_daemon(daemon),
            false => Ok(()),
        }
    }
    fn start(&mut self) -> ipckit::Result<()> {
        // SAFETY: the suite's targets only sleep, raise a signal or `_exit`.
        unsafe { self.0.start() }
    }
    fn join(&mut self, timeout: Option<Duration>) -> ipckit::Result<()> {
        self.0.join(timeout)
    }
    fn is_alive(&mut self) -> bool {
        self.0.is_alive()
    }
    fn exitcode(&self) -> Option<i32> {
        let code = self.0.exitcode()?;
        Some(if SHELL && code < 0 { 128 - code } else { code })
    }
    fn pid(&self) -> Option<i32> {
        self.0.pid().map(|p| p.as_raw())
    }
    fn kill(&self) -> ipckit::Result<()> {
        self.0.kill()
    }
}

/// `ipckit::shm::Value<f64>` and `Array<i32>` as a [`SharedPort`]; with
/// `F32` the value is stored as a C float (typecode `'f'`), a wrong port of
/// `'d'`.
struct KitShared<const F32: bool>(ipckit::shm::Value<f64>, Option<ipckit::shm::Array<i32>>);

impl<const F32: bool> SharedPort for KitShared<F32> {
    fn new(value: f64, items: &[i32]) -> ipckit::Result<Self> {
        let array = match items {
            [] => None,
            items => Some(ipckit::shm::Array::from_slice(items)?),
        };
        Ok(KitShared(ipckit::shm::Value::new(value)?, array))
    }
    fn value(&self) -> ipckit::Result<f64> {
        Ok(self.0.get())
    }
    fn set_value(&self, x: f64) -> ipckit::Result<()> {
        self.0.set(if F32 { x as f32 as f64 } else { x });
        Ok(())
    }
    fn add_under_lock(&self, delta: f64) -> ipckit::Result<()> {
        let _held = self.0.get_lock()?.lock()?;
        self.0.set(self.0.get() + delta);
        Ok(())
    }
    fn len(&self) -> usize {
        self.1.as_ref().map_or(0, |a| a.len())
    }
    fn get(&self, i: usize) -> ipckit::Result<i32> {
        let array = self
            .1
            .as_ref()
            .ok_or_else(|| ipckit::Error::other("empty array"))?;
        array.get(i)
    }
    fn set(&self, i: usize, x: i32) -> ipckit::Result<()> {
        let array = self
            .1
            .as_ref()
            .ok_or_else(|| ipckit::Error::other("empty array"))?;
        array.set(i, x)
    }
}

/// A "shared" value and array kept in each process's own memory.
struct PrivateCopy(AtomicU64, Vec<AtomicI32>);

impl SharedPort for PrivateCopy {
    fn new(value: f64, items: &[i32]) -> ipckit::Result<Self> {
        let items = items.iter().map(|&x| AtomicI32::new(x)).collect();
        Ok(PrivateCopy(AtomicU64::new(value.to_bits()), items))
    }
    fn value(&self) -> ipckit::Result<f64> {
        Ok(f64::from_bits(self.0.load(Ordering::SeqCst)))
    }
    fn set_value(&self, x: f64) -> ipckit::Result<()> {
        self.0.store(x.to_bits(), Ordering::SeqCst);
        Ok(())
    }
    fn add_under_lock(&self, delta: f64) -> ipckit::Result<()> {
        self.set_value(self.value()? + delta)
    }
    fn len(&self) -> usize {
        self.1.len()
    }
    fn get(&self, i: usize) -> ipckit::Result<i32> {
        let item = self
            .1
            .get(i)
            .ok_or_else(|| ipckit::Error::other("index out of range"))?;
        Ok(item.load(Ordering::SeqCst))
    }
    fn set(&self, i: usize, x: i32) -> ipckit::Result<()> {
        let item = self
            .1
            .get(i)
            .ok_or_else(|| ipckit::Error::other("index out of range"))?;
        item.store(x, Ordering::SeqCst);
        Ok(())
    }
}

/// `ipckit::pool::Pool` as a [`PoolPort`]; with `LONG_GET` its `get`
/// ignores the timeout it is given and waits 10 s.
struct KitPool<const LONG_GET: bool>(ipckit::pool::Pool);

impl<const LONG_GET: bool> PoolPort for KitPool<LONG_GET> {
    type Pending = ipckit::pool::AsyncResult<u64>;
    fn new(processes: usize) -> ipckit::Result<Self> {
        // SAFETY: the workers only run the suite's plain task functions.
        unsafe { ipckit::pool::Pool::new(ipckit::pool::PoolConfig::new(processes)) }.map(KitPool)
    }
    fn apply_async(&self, f: fn(u64) -> u64, x: u64) -> ipckit::Result<Self::Pending> {
        self.0.apply_async(f, x)
    }
    fn get(&self, pending: &Self::Pending, timeout: Duration) -> ipckit::Result<u64> {
        pending.get(if LONG_GET {
            Duration::from_secs(10)
        } else {
            timeout
        })
    }
    fn map(&self, f: fn(u64) -> u64, items: Vec<u64>) -> ipckit::Result<Vec<u64>> {
        self.0.map(f, items, 1)
    }
    fn worker_pids(&self) -> Vec<i32> {
        self.0.worker_pids().iter().map(|p| p.as_raw()).collect()
    }
    fn close_and_join(&self) -> ipckit::Result<()> {
        self.0.close();
        self.0.join()
    }
}

/// `ipckit::manager::Manager` and its proxies as a [`ManagerPort`]. With
/// `LOCAL_LIST` the list is a copy in each process's memory; with
/// `DICT_REPR` the namespace prints like a dict.
struct KitManager<const LOCAL_LIST: bool, const DICT_REPR: bool> {
    list: ipckit::manager::ListProxy,
    local: std::cell::RefCell<Vec<i64>>,
    dict: ipckit::manager::DictProxy,
    ns: ipckit::manager::NamespaceProxy,
    _manager: ipckit::manager::Manager,
}

type GoodManager = KitManager<false, false>;

fn int(v: ipckit::manager::PyValue) -> ipckit::Result<i64> {
    match v {
        ipckit::manager::PyValue::Int(n) => Ok(n),
        other => Err(ipckit::Error::other(format!("{other:?} is not an int"))),
    }
}

impl<const LOCAL_LIST: bool, const DICT_REPR: bool> ManagerPort
    for KitManager<LOCAL_LIST, DICT_REPR>
{
    fn start() -> ipckit::Result<Self> {
        let config = ipckit::manager::ManagerConfig {
            program: Some(env!("CARGO_BIN_EXE_ipckit").into()),
            ..Default::default()
        };
        let m = ipckit::manager::Manager::start(&config)?;
        let ns = m.namespace()?;
        ns.set("x", 1)?;
        ns.set("y", 1)?;
        Ok(KitManager {
            list: m.list(vec![1.into(), 2.into(), 3.into()])?,
            local: std::cell::RefCell::new(vec![1, 2, 3]),
            dict: m.dict(Vec::new())?,
            ns,
            _manager: m,
        })
    }
    fn list_append(&self, x: i64) -> ipckit::Result<()> {
        match LOCAL_LIST {
            true => {
                self.local.borrow_mut().push(x);
                Ok(())
            }
            false => self.list.append(x),
        }
    }
    fn list_items(&self) -> ipckit::Result<Vec<i64>> {
        match LOCAL_LIST {
            true => Ok(self.local.borrow().clone()),
            false => self.list.to_vec()?.into_iter().map(int).collect(),
        }
    }
    fn dict_set(&self, key: &str, x: i64) -> ipckit::Result<()> {
        self.dict.set(key, x)
    }
    fn dict_get(&self, key: &str) -> ipckit::Result<Option<i64>> {
        let want = ipckit::manager::PyValue::from(key);
        let found = self.dict.items()?.into_iter().find(|(k, _)| *k == want);
        found.map(|(_, v)| int(v)).transpose()
    }
    fn ns_get(&self, name: &str) -> ipckit::Result<i64> {
        int(self.ns.get(name)?)
    }
    fn ns_set(&self, name: &str, x: i64) -> ipckit::Result<()> {
        self.ns.set(name, x)
    }
    fn ns_add(&self, name: &str, delta: i64) -> ipckit::Result<()> {
        let op = ipckit::manager::Op::Add(delta.into());
        self.ns.update(name, op).map(|_| ())
    }
    fn ns_repr(&self) -> ipckit::Result<String> {
        match DICT_REPR {
            true => Ok(format!(
                "{{'x': {}, 'y': {}}}",
                self.ns_get("x")?,
                self.ns_get("y")?
            )),
            false => self.ns.repr(),
        }
    }
}

/// Every check of these suites against the kit's mechanisms, one test each.
mod kit {
    use super::*;
    ipckit::conformance_tests!(manager, GoodManager);
    ipckit::conformance_tests!(shared, KitShared<false>);
    ipckit::conformance_tests!(pool, KitPool<false>);
    ipckit::conformance_tests!(rlock, KitRLock<true>);
    ipckit::conformance_tests!(joinable, KitJoinable);
    ipckit::conformance_tests!(process, GoodProcess);
    ipckit::conformance_tests!(semaphore, KitSemaphore);
    #[cfg(target_os = "linux")]
    ipckit::conformance_tests!(priority, KitMq);
    #[cfg(target_os = "linux")]
    ipckit::conformance_tests!(typed, KitSysv);
}

/// The semaphore suite against the kit's bounded semaphore.
mod bounded {
    use super::*;
    ipckit::conformance_tests!(semaphore, KitBounded);
}

// ---------------------------------------------------------------------------
// Deliberately broken ports.

/// A semaphore whose count lives in each process's own memory: a release in
/// one process is never seen by another.
struct LocalCount(AtomicU32);

impl SemaphorePort for LocalCount {
    fn new(value: u32) -> ipckit::Result<Self> {
        Ok(LocalCount(AtomicU32::new(value)))
    }
    fn acquire(&self, timeout: Option<Duration>) -> ipckit::Result<()> {
        let t = timeout.unwrap_or(Duration::from_secs(3600));
        let start = Instant::now();
        loop {
            let took = self
                .0
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            if took.is_ok() {
                return Ok(());
            }
            if start.elapsed() >= t {
                return Err(ipckit::Error::timeout(t));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    fn release(&self) -> ipckit::Result<()> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn get_value(&self) -> ipckit::Result<u32> {
        Ok(self.0.load(Ordering::SeqCst))
    }
}

/// A counting semaphore that claims to be bounded.
struct SaysBounded(KitSemaphore);

impl SemaphorePort for SaysBounded {
    const BOUNDED: bool = true;
    fn new(value: u32) -> ipckit::Result<Self> {
        KitSemaphore::new(value).map(SaysBounded)
    }
    fn acquire(&self, timeout: Option<Duration>) -> ipckit::Result<()> {
        self.0.acquire(timeout)
    }
    fn release(&self) -> ipckit::Result<()> {
        self.0.release()
    }
    fn get_value(&self) -> ipckit::Result<u32> {
        self.0.get_value()
    }
}

/// A priority queue port that sends everything with priority 0 (`NOPRIO`),
/// or (`CLOSE_UNLINKS`) whose close also unlinks the name.
#[cfg(target_os = "linux")]
struct BrokenMq<const NOPRIO: bool, const CLOSE_UNLINKS: bool>(KitMq, String);

#[cfg(target_os = "linux")]
impl<const NOPRIO: bool, const CLOSE_UNLINKS: bool> PriorityQueuePort
    for BrokenMq<NOPRIO, CLOSE_UNLINKS>
{
    fn create_exclusive(name: &str) -> ipckit::Result<Self> {
        KitMq::create_exclusive(name).map(|q| BrokenMq(q, name.into()))
    }
    fn open(name: &str) -> ipckit::Result<Self> {
        KitMq::open(name).map(|q| BrokenMq(q, name.into()))
    }
    fn send(&self, message: &[u8], priority: u32) -> ipckit::Result<()> {
        self.0.send(message, if NOPRIO { 0 } else { priority })
    }
    fn receive(&self, timeout: Option<Duration>) -> ipckit::Result<(Vec<u8>, u32)> {
        self.0.receive(timeout)
    }
    fn close(self) -> ipckit::Result<()> {
        if CLOSE_UNLINKS {
            KitMq::unlink(&self.1)?;
        }
        self.0.close()
    }
    fn unlink(name: &str) -> ipckit::Result<()> {
        KitMq::unlink(name)
    }
}

/// A typed queue port whose receive ignores the type asked for.
#[cfg(target_os = "linux")]
struct IgnoresType(KitSysv);

#[cfg(target_os = "linux")]
impl TypedQueuePort for IgnoresType {
    fn new() -> ipckit::Result<Self> {
        KitSysv::new().map(IgnoresType)
    }
    fn send(&self, mtype: i64, data: &[u8]) -> ipckit::Result<()> {
        self.0.send(mtype, data)
    }
    fn try_receive(&self, _msgtyp: i64) -> ipckit::Result<(i64, Vec<u8>)> {
        self.0.try_receive(0)
    }
}

/// A JoinableQueue whose count of unfinished tasks lives in each process's
/// own memory: a consumer's `task_done` never reaches the producer.
struct LocalTasks(KitJoinable, AtomicI64);

impl JoinableQueuePort for LocalTasks {
    fn new(maxsize: usize) -> ipckit::Result<Self> {
        Ok(LocalTasks(KitJoinable::new(maxsize)?, AtomicI64::new(0)))
    }
    fn put(&self, item: u64, timeout: Option<Duration>) -> ipckit::Result<()> {
        self.0.put(item, timeout)?;
        self.1.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn get(&self, timeout: Option<Duration>) -> ipckit::Result<u64> {
        self.0.get(timeout)
    }
    fn task_done(&self) -> ipckit::Result<()> {
        if self.1.fetch_sub(1, Ordering::SeqCst) <= 0 {
            self.1.fetch_add(1, Ordering::SeqCst);
            return Err(ipckit::Error::other("task_done() called too many times"));
        }
        Ok(())
    }
    fn join(&self, timeout: Option<Duration>) -> ipckit::Result<()> {
        let t = timeout.unwrap_or(Duration::from_secs(3600));
        let start = Instant::now();
        while self.1.load(Ordering::SeqCst) > 0 {
            if start.elapsed() >= t {
                return Err(ipckit::Error::timeout(t));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// The tests.

#[test]
fn a_plain_lock_fails_exactly_the_rlock_checks() {
    let report = rlock::check::<KitRLock<false>>().unwrap_err();
    let want = [
        "reentrant_in_one_process",
        "excludes_others_until_fully_released",
    ];
    assert_eq!(report.failed(), want, "{report}");
}

#[test]
fn a_joinable_queue_counting_tasks_per_process_fails_the_join_check() {
    let report = joinable::check::<LocalTasks>().unwrap_err();
    assert_eq!(
        report.failed(),
        ["join_waits_for_every_task_done"],
        "{report}"
    );
    let detail = &report.get("join_waits_for_every_task_done").unwrap().detail;
    assert!(detail.contains("consumer: task_done 1 failed"), "{report}");
    assert!(detail.contains("producer was stopped"), "{report}");
}

#[test]
fn a_process_that_ignores_daemon_fails_only_the_daemon_check() {
    let report = process::check::<KitProcess<false, false>>().unwrap_err();
    assert_eq!(report.failed(), ["daemon_ends_with_its_parent"], "{report}");
}

#[test]
fn a_process_reporting_signals_as_a_shell_does_fails_the_two_signal_checks() {
    let report = process::check::<KitProcess<true, true>>().unwrap_err();
    let want = [
        "join_timeout_returns_while_alive",
        "exitcode_is_minus_the_signal",
    ];
    assert_eq!(report.failed(), want, "{report}");
}

#[test]
fn a_counting_semaphore_notes_what_release_above_the_initial_value_did() {
    let mut entries = semaphore::checks::<KitSemaphore>();
    entries.retain(|e| e.name == "bounded_release_above_initial_fails");
    let report = ipckit::conformance::check_all("semaphore", entries).unwrap();
    let note = &report.checks[0];
    assert_eq!(note.status, Status::Noted, "{report}");
    assert!(note.detail.contains("get_value then 2"), "{report}");
}

#[test]
fn a_semaphore_counted_in_each_process_fails_the_cross_process_checks() {
    let report = semaphore::check::<LocalCount>().unwrap_err();
    let want = [
        "release_wakes_a_waiter_in_another_process",
        "at_most_n_holders",
    ];
    assert_eq!(report.failed(), want, "{report}");
}

#[test]
fn a_counting_semaphore_that_says_bounded_fails_only_the_bounded_check() {
    let report = semaphore::check::<SaysBounded>().unwrap_err();
    let want = ["bounded_release_above_initial_fails"];
    assert_eq!(report.failed(), want, "{report}");
}

#[cfg(target_os = "linux")]
#[test]
fn a_queue_without_priorities_fails_the_two_order_checks() {
    let report = priority::check::<BrokenMq<true, false>>().unwrap_err();
    let want = ["priority_order", "fifo_within_a_priority"];
    assert_eq!(report.failed(), want, "{report}");
}

#[cfg(target_os = "linux")]
#[test]
fn a_queue_whose_close_unlinks_fails_close_is_not_unlink() {
    let report = priority::check::<BrokenMq<false, true>>().unwrap_err();
    assert_eq!(report.failed(), ["close_is_not_unlink"], "{report}");
}

#[cfg(target_os = "linux")]
#[test]
fn a_typed_queue_that_ignores_the_type_fails_every_selection_by_type() {
    let report = typed::check::<IgnoresType>().unwrap_err();
    let want = [
        "positive_type_takes_the_first_of_that_type",
        "negative_type_takes_the_lowest_type_up_to",
        "messages_cross_processes",
    ];
    assert_eq!(report.failed(), want, "{report}");
}

#[test]
fn the_kit_value_loses_updates_without_its_lock_as_the_tutorial_shows() {
    let mut entries = shared::checks::<KitShared<false>>();
    entries.retain(|e| e.name == "lost_update_without_the_lock");
    let report = ipckit::conformance::check_all("shared", entries).unwrap();
    assert_eq!(report.checks[0].status, Status::Noted, "{report}");
    assert!(
        report.checks[0].detail.contains("unlocked increments"),
        "{report}"
    );
}

#[test]
fn a_value_and_array_in_private_memory_fail_every_cross_process_check() {
    let report = shared::check::<PrivateCopy>().unwrap_err();
    let want = [
        "child_writes_are_visible_to_the_parent",
        "typecodes_hold_their_c_types",
        "updates_under_the_lock_all_count",
    ];
    assert_eq!(report.failed(), want, "{report}");
}

#[test]
fn a_double_stored_as_a_float_fails_the_value_checks() {
    let report = shared::check::<KitShared<true>>().unwrap_err();
    let want = [
        "child_writes_are_visible_to_the_parent",
        "typecodes_hold_their_c_types",
    ];
    assert_eq!(report.failed(), want, "{report}");
}

#[test]
fn a_pool_whose_get_ignores_its_timeout_fails_the_timeout_check() {
    let report = pool::check::<KitPool<true>>().unwrap_err();
    assert_eq!(report.failed(), ["get_timeout_on_a_slow_task"], "{report}");
}

#[test]
fn the_kit_manager_loses_updates_with_get_then_set_only_as_a_note() {
    let mut entries = manager::checks::<GoodManager>();
    entries.retain(|e| e.name == "racy_get_then_set");
    let report = ipckit::conformance::check_all("manager", entries).unwrap();
    assert_eq!(report.checks[0].status, Status::Noted, "{report}");
    assert!(report.checks[0].detail.contains("get-then-set"), "{report}");
}

#[test]
fn a_list_kept_in_each_process_fails_only_the_list_check() {
    let report = manager::check::<KitManager<true, false>>().unwrap_err();
    assert_eq!(
        report.failed(),
        ["list_update_seen_by_every_process"],
        "{report}"
    );
}

#[test]
fn a_namespace_printed_as_a_dict_fails_only_the_namespace_check() {
    let report = manager::check::<KitManager<false, true>>().unwrap_err();
    assert_eq!(
        report.failed(),
        ["namespace_update_seen_and_printed"],
        "{report}"
    );
}
