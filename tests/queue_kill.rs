//! No kill can wedge the Queue: producers blocked on a full queue and
//! consumers blocked on an empty one are `SIGKILL`ed at random moments, by
//! the thousand. After every kill the queue keeps working (the parent's next
//! operation completes within a deadline, and a fresh process puts and gets
//! after every round), and no acknowledged item is lost or delivered twice.
//!
//! glibc's process-shared `pthread_cond_t`, which the queue used before,
//! failed this within a few kills: a waiter killed inside `pthread_cond_wait`
//! left the next `pthread_cond_signal` spinning forever.
//!
//! `IPCKIT_KILLS=N` sets the number of kills of the default run (2,000); the
//! `#[ignore]`d soak runs 20,000 (`cargo test --test queue_kill -- --ignored`).
//! `IPCKIT_KILL_SEED` replays a run (the seed is printed).
#![cfg(target_os = "linux")]

mod common;

use common::state::{await_futex_sleep, in_futex_sleep};
use ipckit::audit::Scope;
use ipckit::process::{self, ChildGuard, ExitStatus};
use ipckit::queue::{JoinableQueue, Queue, Wait};
use ipckit::shm::{AnonMapping, SharedRegion};
use ipckit::sync::Lock;
use nix::sys::signal::Signal;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The longest any operation that must complete may take.
const DEADLINE: Duration = Duration::from_secs(10);
/// At most this many workers are blocked at once.
const MAX_WORKERS: usize = 3;
/// Log entries per worker and round.
const LOG: usize = 64;
/// The bit that marks the parent's own items.
const PARENT: u64 = 1 << 63;

/// A small xorshift generator (the test must be replayable from its seed).
struct Rng(u64);

impl Rng {
    fn from_env() -> Rng {
        let seed = std::env::var("IPCKIT_KILL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("IPCKIT_KILL_SEED={seed}");
        Rng(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Per-worker logs in shared memory: slot 0 counts, slots 1.. hold items + 1.
struct Logs(AnonMapping);

impl Logs {
    fn new() -> Logs {
        Logs(AnonMapping::new(MAX_WORKERS * (LOG + 1) * 8).unwrap())
    }
    fn at(&self, worker: usize, i: usize) -> &AtomicU64 {
        let ptr = self.0.place::<AtomicU64>((worker * (LOG + 1) + i) * 8);
        // SAFETY: in bounds and aligned (checked by `place`); zeroed memory is
        // a valid AtomicU64; the mapping lives as long as `self`.
        unsafe { &*ptr.unwrap() }
    }
    fn record(&self, worker: usize, item: u64) {
        let n = self.at(worker, 0).load(Ordering::Acquire) as usize + 1;
        self.at(worker, n.min(LOG))
            .store(item + 1, Ordering::Release);
        self.at(worker, 0).store(n as u64, Ordering::Release);
    }
    fn items(&self, worker: usize) -> Vec<u64> {
        let n = self.at(worker, 0).load(Ordering::Acquire) as usize;
        assert!(n < LOG, "worker {worker} logged {n} items, more than fit");
        (1..=n)
            .map(|i| self.at(worker, i).load(Ordering::Acquire) - 1)
            .collect()
    }
    fn clear(&self) {
        for w in 0..MAX_WORKERS {
            self.at(w, 0).store(0, Ordering::Release);
        }
    }
}

/// Forks a child running `work` (queue operations and atomics only: the test
/// binary has other threads, see tests/queue_api.rs).
fn fork(scope: &mut Scope, work: impl FnOnce() -> i32) -> ChildGuard {
    // SAFETY: the children only use the queue (futex, pthread mutex, memcpy,
    // malloc) and atomics in shared memory; they never print.
    let child = unsafe { process::fork(work) }.unwrap();
    scope.track(child.pid());
    child
}

/// What the parent does to one worker before killing it: catch it asleep,
/// on its way, or just after waking it with the operation it waits for.
fn approach(rng: &mut Rng, worker: &ChildGuard) -> bool {
    match rng.below(4) {
        0 => await_futex_sleep(worker.pid()),
        1 => spin(rng),
        _ => {}
    }
    rng.below(2) == 0
}

/// Busy-waits a random 0–300 µs (a sleep would be far longer).
fn spin(rng: &mut Rng) {
    let until = Instant::now() + Duration::from_micros(rng.below(300));
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

fn kill(worker: &mut ChildGuard) {
    worker.signal(Signal::SIGKILL).unwrap();
    let status = worker.wait_deadline(DEADLINE).unwrap();
    assert!(
        matches!(status, ExitStatus::Signaled { signal: 9, .. }),
        "{status}"
    );
}

/// Takes one item within the deadline (the queue must not be wedged).
fn take(q: &Queue<u64>, got: &mut BTreeSet<u64>) {
    let item = q
        .get(Wait::For(DEADLINE))
        .expect("a get after a kill completes");
    assert!(got.insert(item), "item {item:#x} delivered twice");
}

/// One round with a full queue: 1–3 producers block in `put`, each is killed
/// (sometimes just after the parent made room). Returns the kills.
fn full_round(q: &Queue<u64>, logs: &Logs, rng: &mut Rng, round: u64, scope: &mut Scope) -> u64 {
    let mut got = BTreeSet::new();
    let mut put = BTreeSet::new();
    for n in 0..4 {
        let item = PARENT | round << 20 | n;
        q.put(&item, Wait::No)
            .expect("the drained queue takes 4 items");
        put.insert(item);
    }
    let n = 1 + rng.below(MAX_WORKERS as u64) as usize;
    let mut workers: Vec<_> = (0..n)
        .map(|w| {
            let q = q.clone();
            fork(scope, move || {
                for seq in 0..LOG as u64 - 1 {
                    let item = round << 20 | (w as u64) << 16 | seq;
                    if q.put(&item, Wait::Forever).is_err() {
                        return 1;
                    }
                    logs.record(w, item);
                }
                0
            })
        })
        .collect();
    for worker in &mut workers {
        if approach(rng, worker) {
            take(q, &mut got);
        }
        kill(worker);
    }
    while let Ok(item) = q.get(Wait::No) {
        assert!(got.insert(item), "item {item:#x} delivered twice");
    }
    assert!(put.is_subset(&got), "the parent's own items all came out");
    for w in 0..n {
        let acked = logs.items(w);
        let mine: Vec<u64> = got
            .iter()
            .filter(|i| (*i >> 16) == (round << 4 | w as u64))
            .copied()
            .collect();
        // Every acknowledged item came out, and at most one more (committed,
        // then killed before acknowledging).
        assert!(
            mine.len() == acked.len() || mine.len() == acked.len() + 1,
            "producer {w}: acknowledged {acked:x?}, came out {mine:x?}"
        );
        assert_eq!(mine[..acked.len()], acked[..], "producer {w} lost an item");
    }
    n as u64
}

/// One round with an empty queue: 1–3 consumers block in `get`, each is
/// killed (sometimes just after the parent put an item). Returns the kills.
fn empty_round(q: &Queue<u64>, logs: &Logs, rng: &mut Rng, round: u64, scope: &mut Scope) -> u64 {
    let n = 1 + rng.below(MAX_WORKERS as u64) as usize;
    let mut workers: Vec<_> = (0..n)
        .map(|w| {
            let q = q.clone();
            fork(scope, move || {
                loop {
                    match q.get(Wait::Forever) {
                        Ok(item) => logs.record(w, item),
                        Err(_) => return 1,
                    }
                }
            })
        })
        .collect();
    let mut put = Vec::new();
    for worker in &mut workers {
        if approach(rng, worker) {
            let item = PARENT | round << 20 | put.len() as u64;
            q.put(&item, Wait::For(DEADLINE))
                .expect("a put after a kill completes");
            put.push(item);
        }
        kill(worker);
    }
    let mut got = BTreeSet::new();
    for item in (0..n).flat_map(|w| logs.items(w)) {
        assert!(got.insert(item), "item {item:#x} delivered twice");
    }
    while let Ok(item) = q.get(Wait::No) {
        assert!(got.insert(item), "item {item:#x} delivered twice");
    }
    // An item whose get committed in a consumer killed before it logged it is
    // gone with that consumer: at most one per killed consumer.
    let lost = put.iter().filter(|i| !got.contains(i)).count();
    assert!(lost <= n, "{lost} items lost to {n} killed consumers");
    assert!(
        got.iter().all(|i| put.contains(i)),
        "an item out of nowhere"
    );
    n as u64
}

/// A fresh process puts and gets within the deadline.
fn fresh_process_works(q: &Queue<u64>, scope: &mut Scope) {
    let q2 = q.clone();
    let mut check = fork(scope, move || {
        let ok =
            q2.put(&7, Wait::For(DEADLINE)).is_ok() && q2.get(Wait::For(DEADLINE)).ok() == Some(7);
        i32::from(!ok)
    });
    assert_eq!(
        check.wait_deadline(DEADLINE * 3).unwrap(),
        ExitStatus::Exited(0),
        "a fresh process could not put and get"
    );
}

fn kill_blocked_workers(kills: u64) {
    let mut scope = Scope::new();
    let mut rng = Rng::from_env();
    let q: Queue<u64> = Queue::new(4).unwrap();
    let logs = Logs::new();
    let (mut done, mut round, start) = (0, 0, Instant::now());
    while done < kills {
        round += 1;
        logs.clear();
        done += match rng.below(2) {
            0 => full_round(&q, &logs, &mut rng, round, &mut scope),
            _ => empty_round(&q, &logs, &mut rng, round, &mut scope),
        };
        fresh_process_works(&q, &mut scope);
    }
    eprintln!(
        "{done} kills in {round} rounds, {:?}; the queue recovered {} dead lock holder(s)",
        start.elapsed(),
        q.stats().recoveries
    );
    scope.assert_clean();
}

fn kills_from_env(default: u64) -> u64 {
    std::env::var("IPCKIT_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[test]
fn killing_blocked_producers_and_consumers_never_wedges_the_queue() {
    kill_blocked_workers(kills_from_env(2_000));
}

#[test]
#[ignore = "a soak of 20,000 kills (about a minute)"]
fn soak_killing_blocked_producers_and_consumers() {
    kill_blocked_workers(20_000);
}

/// `Lock` meets the same bar: holders and waiters (in `pthread_mutex_lock`)
/// killed at random; after each kill the parent acquires within the deadline,
/// and a holder's death is reported exactly when one died holding it.
#[test]
fn killing_lock_holders_and_waiters_never_wedges_the_lock() {
    let mut scope = Scope::new();
    let mut rng = Rng::from_env();
    let lock = Lock::new().unwrap();
    let logs = Logs::new();
    let mut kills = 0;
    while kills < kills_from_env(2_000) / 4 {
        let (lock, logs) = (&lock, &logs);
        let mut workers: Vec<_> = (0..2)
            .map(|w| {
                fork(&mut scope, move || {
                    loop {
                        let Ok(guard) = lock.acquire() else { return 1 };
                        logs.at(w, 1).fetch_add(1, Ordering::AcqRel);
                        drop(guard);
                    }
                })
            })
            .collect();
        for worker in &mut workers {
            if rng.below(2) == 0 {
                // Kill it while it waits for the lock the parent holds.
                let held = lock.acquire_timeout(DEADLINE).unwrap();
                await_futex_sleep(worker.pid());
                kill(worker);
                drop(held);
            } else {
                // Kill it anywhere, often holding the lock.
                spin(&mut rng);
                kill(worker);
            }
            kills += 1;
            let guard = lock
                .acquire_timeout(DEADLINE)
                .expect("the lock is acquired after a kill");
            drop(guard);
        }
    }
    scope.assert_clean();
}

/// `JoinableQueue::join` meets the same bar: joiners killed while blocked
/// in `join`; afterwards `task_done` wakes a fresh joiner at once.
#[test]
fn killing_blocked_joiners_never_wedges_join() {
    let mut scope = Scope::new();
    let mut rng = Rng::from_env();
    let q: JoinableQueue<u64> = JoinableQueue::new(0).unwrap();
    for round in 0..kills_from_env(2_000) / 20 {
        q.queue().put(&round, Wait::No).unwrap();
        let mut joiners: Vec<_> = (0..2)
            .map(|_| {
                let q = q.clone();
                fork(&mut scope, move || i32::from(q.join(None).is_err()))
            })
            .collect();
        for joiner in &mut joiners {
            approach(&mut rng, joiner);
            kill(joiner);
        }
        let q2 = q.clone();
        let mut fresh = fork(&mut scope, move || {
            i32::from(q2.join(Some(DEADLINE)).is_err())
        });
        await_futex_sleep(fresh.pid());
        assert_eq!(q.queue().get(Wait::No).unwrap(), round);
        q.task_done().unwrap();
        assert_eq!(
            fresh.wait_deadline(DEADLINE).unwrap(),
            ExitStatus::Exited(0)
        );
        assert!(!in_futex_sleep(fresh.pid()));
    }
    scope.assert_clean();
}
