//! The multiprocessing Queue, tested in-process with forked children.
//!
//! This test binary is multi-threaded, so forked children stay away from
//! stdout and from locks other threads may hold. They do use the queue, whose
//! operations allocate (postcard buffers): glibc's `malloc` is safe in the child
//! of a multi-threaded `fork` (it holds its arena locks across `fork` and
//! resets them in the child). Every test checks with an `audit::Scope` that
//! its children were reaped.

#![cfg(target_os = "linux")]

mod common;

use common::state::await_futex_sleep;
use ipckit::Error;
use ipckit::audit::Scope;
use ipckit::process::{self, ChildGuard};
use ipckit::queue::{JoinableQueue, Queue, Wait};
use ipckit::shm::{AnonMapping, SharedRegion};
use proptest::prelude::*;
use rstest::rstest;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(20);
/// How soon a notified process must be running again: far inside the
/// [`DEADLINE`] it would otherwise sleep until (the queue has no timer slice).
const WOKEN: Duration = Duration::from_secs(2);
const SHORT: Duration = Duration::from_millis(30);

/// Forks a child running `work`; the child's exit code is what `work` returns.
fn child(scope: &mut Scope, work: impl FnOnce() -> i32) -> ChildGuard {
    // SAFETY: children use the queue (pthread calls, memcpy, malloc: see the
    // module doc) and atomics in shared memory; they never print.
    let guard = unsafe { process::fork(work) }.unwrap();
    scope.track(guard.pid());
    guard
}

/// A shared array of counters (for children to report what they did).
struct Shared(AnonMapping);

impl Shared {
    fn new(n: usize) -> Shared {
        Shared(AnonMapping::new(n * 8).unwrap())
    }
    fn at(&self, i: usize) -> &AtomicU64 {
        // SAFETY: in bounds (checked by `place`), aligned, zero-initialised shared memory.
        unsafe { &*self.0.place::<AtomicU64>(i * 8).unwrap() }
    }
}

#[test]
fn items_come_out_in_order_and_qsize_is_exact() {
    let q: Queue<(u32, String)> = Queue::new(0).unwrap();
    for i in 0..100 {
        q.put(&(i, format!("item {i}")), Wait::No).unwrap();
        assert_eq!(q.qsize(), i as usize + 1);
    }
    for i in 0..100 {
        assert_eq!(q.get(Wait::No).unwrap(), (i, format!("item {i}")));
    }
    assert!(q.empty());
}

#[test]
fn the_ring_wraps_around_without_corrupting_items() {
    let q: Queue<Vec<u8>> = Queue::with_capacity_bytes(0, 1000).unwrap();
    for round in 0..200u32 {
        let item: Vec<u8> = (0..(round % 97) as u8).collect();
        q.put(&item, Wait::No).unwrap();
        q.put(&item, Wait::No).unwrap();
        assert_eq!(q.get(Wait::No).unwrap(), item);
        assert_eq!(q.get(Wait::No).unwrap(), item);
    }
    assert_eq!(q.stats().bytes, 0);
}

#[rstest]
#[case::get_nowait_on_empty(0, 0, Wait::No, false)]
#[case::get_timeout_on_empty(0, 0, Wait::For(SHORT), false)]
#[case::put_nowait_on_full(2, 2, Wait::No, true)]
#[case::put_timeout_on_full(2, 2, Wait::For(SHORT), true)]
fn blocked_operations_fail_with_full_or_empty_after_their_timeout(
    #[case] maxsize: usize,
    #[case] prefill: u32,
    #[case] wait: Wait,
    #[case] put: bool,
) {
    let q: Queue<u32> = Queue::new(maxsize).unwrap();
    for i in 0..prefill {
        q.put(&i, Wait::No).unwrap();
    }
    assert_eq!(q.full(), maxsize > 0);
    let start = Instant::now();
    let err = if put {
        q.put(&99, wait).unwrap_err()
    } else {
        q.get(wait).unwrap_err()
    };
    match (put, &err) {
        (true, Error::Full(_)) | (false, Error::Empty(_)) => {}
        _ => panic!("wrong error {err:?}"),
    }
    if let Wait::For(t) = wait {
        assert!(
            start.elapsed() >= t,
            "returned early: {:?}",
            start.elapsed()
        );
    }
    assert_eq!(
        q.qsize(),
        prefill as usize,
        "a failed operation changes nothing"
    );
}

#[test]
fn an_unlimited_queue_still_refuses_an_item_bigger_than_its_ring() {
    let q: Queue<Vec<u8>> = Queue::with_capacity_bytes(0, 1024).unwrap();
    let err = q.put(&vec![0u8; 4096], Wait::No).unwrap_err();
    assert!(err.to_string().contains("larger capacity"), "{err}");
    // Bytes run out before the item limit: a non-blocking put says Full.
    while q.put(&vec![1u8; 100], Wait::No).is_ok() {}
    assert!(matches!(
        q.put(&vec![1u8; 100], Wait::No),
        Err(Error::Full(_))
    ));
    assert!(
        !q.full(),
        "full() is about maxsize, which is unlimited here"
    );
}

#[test]
fn a_too_small_ring_is_refused() {
    assert!(matches!(
        Queue::<u8>::with_capacity_bytes(0, 10),
        Err(Error::Invalid { .. })
    ));
}

#[test]
fn after_close_puts_fail_and_gets_drain_then_fail() {
    let q: Queue<u8> = Queue::new(0).unwrap();
    q.put(&1, Wait::No).unwrap();
    q.put(&2, Wait::No).unwrap();
    q.close().unwrap();
    assert!(matches!(q.put(&3, Wait::No), Err(Error::Closed(_))));
    assert_eq!(q.get(Wait::No).unwrap(), 1);
    assert_eq!(q.get(Wait::Forever).unwrap(), 2);
    assert!(
        matches!(q.get(Wait::Forever), Err(Error::Closed(_))),
        "no hang on a closed, drained queue"
    );
}

#[test]
fn close_wakes_a_getter_blocked_in_another_process() {
    let mut scope = Scope::new();
    let q: Queue<u8> = Queue::new(0).unwrap();
    let q2 = q.clone();
    let mut getter = child(&mut scope, move || match q2.get(Wait::Forever) {
        Err(Error::Closed(_)) => 0,
        _ => 1,
    });
    await_futex_sleep(getter.pid());
    q.close().unwrap();
    assert_eq!(
        getter.wait_deadline(WOKEN).unwrap(),
        process::ExitStatus::Exited(0)
    );
    scope.assert_clean();
}

/// A `put` wakes a getter blocked on the empty queue, a `get` a putter
/// blocked on the full one: the sleeper is caught in its futex wait first,
/// then must finish well before its own timeout.
#[rstest]
#[case::put_wakes_a_blocked_getter(false)]
#[case::get_wakes_a_blocked_putter(true)]
fn each_operation_wakes_a_process_blocked_on_the_other(#[case] full: bool) {
    let mut scope = Scope::new();
    let q: Queue<u32> = Queue::new(1).unwrap();
    if full {
        q.put(&1, Wait::No).unwrap();
    }
    let q2 = q.clone();
    let mut sleeper = child(&mut scope, move || {
        let done = match full {
            true => q2.put(&2, Wait::For(DEADLINE)).is_ok(),
            false => q2.get(Wait::For(DEADLINE)).is_ok_and(|v| v == 3),
        };
        i32::from(!done)
    });
    await_futex_sleep(sleeper.pid());
    match full {
        true => assert_eq!(q.get(Wait::No).unwrap(), 1),
        false => q.put(&3, Wait::No).unwrap(),
    }
    assert_eq!(
        sleeper.wait_deadline(WOKEN).unwrap(),
        process::ExitStatus::Exited(0),
        "the blocked process was not woken"
    );
    assert_eq!(q.qsize(), usize::from(full));
    scope.assert_clean();
}

/// `task_done` of the last item wakes a process blocked in `join`.
#[test]
fn the_last_task_done_wakes_a_joiner_blocked_in_another_process() {
    let mut scope = Scope::new();
    let q: JoinableQueue<u32> = JoinableQueue::new(0).unwrap();
    q.queue().put(&1, Wait::No).unwrap();
    let q2 = q.clone();
    let mut joiner = child(&mut scope, move || {
        i32::from(q2.join(Some(DEADLINE)).is_err())
    });
    await_futex_sleep(joiner.pid());
    q.queue().get(Wait::No).unwrap();
    q.task_done().unwrap();
    assert_eq!(
        joiner.wait_deadline(WOKEN).unwrap(),
        process::ExitStatus::Exited(0)
    );
    scope.assert_clean();
}

#[test]
fn task_done_more_often_than_puts_is_an_error_and_join_waits_for_every_item() {
    let mut scope = Scope::new();
    let q: JoinableQueue<u32> = JoinableQueue::new(0).unwrap();
    assert!(q.task_done().is_err());
    for i in 0..5 {
        q.queue().put(&i, Wait::No).unwrap();
    }
    assert!(matches!(q.join(Some(SHORT)), Err(Error::Timeout { .. })));
    let worker = q.clone();
    let mut consumer = child(&mut scope, move || {
        for _ in 0..5 {
            if worker.queue().get(Wait::For(DEADLINE)).is_err() || worker.task_done().is_err() {
                return 1;
            }
        }
        0
    });
    q.join(Some(DEADLINE)).unwrap();
    assert_eq!(q.queue().stats().unfinished, 0);
    assert_eq!(
        consumer.wait_deadline(DEADLINE).unwrap(),
        process::ExitStatus::Exited(0)
    );
    assert!(q.task_done().is_err());
    scope.assert_clean();
}

#[test]
fn a_producer_can_exit_and_be_joined_before_the_queue_is_drained() {
    // Python's trap: its feeder thread must flush before the producer can exit.
    let mut scope = Scope::new();
    let q: Queue<Vec<u8>> = Queue::new(0).unwrap();
    let producer_q = q.clone();
    let mut producer = child(&mut scope, move || {
        for i in 0..1000u32 {
            if producer_q
                .put(&i.to_le_bytes().repeat(64), Wait::No)
                .is_err()
            {
                return 1;
            }
        }
        0
    });
    assert_eq!(
        producer.wait_deadline(DEADLINE).unwrap(),
        process::ExitStatus::Exited(0),
        "joined before draining"
    );
    assert_eq!(q.qsize(), 1000);
    for i in 0..1000u32 {
        assert_eq!(q.get(Wait::No).unwrap(), i.to_le_bytes().repeat(64));
    }
    scope.assert_clean();
}

/// One producer's items: (producer, sequence number).
type Item = (u32, u32);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Several producers and consumers, random bounds and timeouts: every item
    /// is delivered exactly once, and each consumer sees each producer's items
    /// in the order they were put.
    #[test]
    fn many_processes_behave_like_a_bounded_fifo(
        maxsize in 1usize..6,
        per_producer in proptest::collection::vec(1u32..40, 1..4),
        consumers in 1usize..4,
        timeout_us in 0u64..3000,
    ) {
        let mut scope = Scope::new();
        let q: Queue<Item> = Queue::new(maxsize).unwrap();
        let total: u32 = per_producer.iter().sum();
        // Each consumer writes what it got into its own slice of `log`.
        let log = Shared::new(consumers * (total as usize + 1));
        let slot = |c: usize, i: usize| c * (total as usize + 1) + i;
        let mut producers = Vec::new();
        for (p, &count) in per_producer.iter().enumerate() {
            let q = q.clone();
            producers.push(child(&mut scope, move || {
                for seq in 0..count {
                    // Retry on Full: timeouts are part of the interleaving.
                    while let Err(e) = q.put(&(p as u32, seq), Wait::For(Duration::from_micros(timeout_us))) {
                        if !matches!(e, Error::Full(_)) { return 1; }
                    }
                }
                0
            }));
        }
        let mut getters = Vec::new();
        for c in 0..consumers {
            let (q, log) = (q.clone(), &log);
            getters.push(child(&mut scope, move || {
                let mut n = 0;
                loop {
                    match q.get(Wait::For(Duration::from_micros(timeout_us))) {
                        Ok((p, seq)) => {
                            n += 1;
                            log.at(slot(c, n)).store((u64::from(p) << 32 | u64::from(seq)) + 1, Ordering::Release);
                            log.at(slot(c, 0)).store(n as u64, Ordering::Release);
                        }
                        Err(Error::Empty(_)) => continue,
                        Err(Error::Closed(_)) => return 0,
                        Err(_) => return 1,
                    }
                }
            }));
        }
        let start = Instant::now();
        for p in &mut producers {
            prop_assert!(q.qsize() <= maxsize);
            prop_assert_eq!(p.wait_deadline(DEADLINE).unwrap(), process::ExitStatus::Exited(0));
        }
        q.close().unwrap();
        for g in &mut getters {
            prop_assert_eq!(g.wait_deadline(DEADLINE).unwrap(), process::ExitStatus::Exited(0));
        }
        prop_assert!(start.elapsed() < DEADLINE);
        let mut seen = std::collections::BTreeSet::new();
        for c in 0..consumers {
            let n = log.at(slot(c, 0)).load(Ordering::Acquire) as usize;
            let mut last = vec![None; per_producer.len()];
            for i in 1..=n {
                let word = log.at(slot(c, i)).load(Ordering::Acquire) - 1;
                let (p, seq) = ((word >> 32) as usize, word as u32);
                prop_assert!(last[p].is_none_or(|l| l < seq), "consumer {} saw producer {}'s items out of order", c, p);
                last[p] = Some(seq);
                prop_assert!(seen.insert((p, seq)), "item ({}, {}) delivered twice", p, seq);
            }
        }
        prop_assert_eq!(seen.len(), total as usize, "items lost");
        scope.assert_clean();
    }
}

/// A 512 KiB item body. A `String` is encoded with one copy (a `Vec<u8>` byte
/// by byte), so most of a `put`'s time is spent copying it into the ring, under
/// the lock: that is where the kills below are meant to land.
fn body(seq: u32) -> String {
    char::from(b'a' + (seq % 26) as u8)
        .to_string()
        .repeat(512 << 10)
}

/// Kills a producer at a random moment, at least 20 times and until at least
/// one kill landed while it held the queue's lock (the queue counts the
/// recovery); after every kill the queue must be
/// usable and hold exactly the producer's committed items, in order.
#[test]
fn a_producer_killed_mid_put_loses_no_acknowledged_item_and_the_queue_recovers() {
    let mut scope = Scope::new();
    let q: Queue<(u32, String)> = Queue::with_capacity_bytes(0, 64 << 20).unwrap();
    let acked = Shared::new(1);
    let mut attempts = 0;
    while attempts < 20 || q.stats().recoveries == 0 {
        attempts += 1;
        assert!(
            attempts <= 300,
            "no kill landed inside the lock in 300 attempts"
        );
        acked.at(0).store(0, Ordering::Release);
        let (pq, acked_ref) = (q.clone(), &acked);
        let mut producer = child(&mut scope, move || {
            for seq in 0.. {
                if pq.put(&(seq, body(seq)), Wait::Forever).is_err() {
                    return 1;
                }
                acked_ref.at(0).store(u64::from(seq) + 1, Ordering::Release);
            }
            0
        });
        std::thread::sleep(Duration::from_micros(200 + (attempts * 7919 % 3000) as u64));
        producer.signal(nix::sys::signal::Signal::SIGKILL).unwrap();
        producer.wait_deadline(DEADLINE).unwrap();
        let acked_n = acked.at(0).load(Ordering::Acquire) as u32;
        let mut got = 0;
        while let Ok((seq, item)) = q.get(Wait::For(Duration::from_millis(1))) {
            assert_eq!(seq, got, "items in order, none skipped");
            assert_eq!(item, body(seq), "item {seq} intact");
            got += 1;
        }
        assert!(
            got == acked_n || got == acked_n + 1,
            "acknowledged {acked_n}, found {got}"
        );
        q.put(&(7, body(7)), Wait::For(DEADLINE)).unwrap();
        assert_eq!(q.get(Wait::For(DEADLINE)).unwrap(), (7, body(7)));
    }
    assert!(
        q.stats().recoveries <= attempts as u64,
        "each dead holder is recovered from once"
    );
    eprintln!(
        "{} lock recovery(ies) from a dead holder in {attempts} kill(s)",
        q.stats().recoveries
    );
    scope.assert_clean();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    /// A consumer killed at a random moment: nothing is delivered twice, at
    /// most the one item it was taking is gone, and the rest stays in order.
    #[test]
    fn a_consumer_killed_mid_get_duplicates_nothing(delay_us in 0u64..5000) {
        let mut scope = Scope::new();
        // Items are strings, not byte vectors: serde encodes a string with
        // one copy and a Vec<u8> byte by byte (200 vectors of 64 KiB made
        // this test take 10.4 s in a debug build; these, 0.7 s). Enough of
        // them that the consumer is still taking them when the kill comes
        // (checked below).
        let q: Queue<(u32, String)> = Queue::with_capacity_bytes(0, 64 << 20).unwrap();
        let n = 4000u32;
        let item = "a".repeat(8 << 10);
        for seq in 0..n {
            q.put(&(seq, item.clone()), Wait::No).unwrap();
        }
        let taken = Shared::new(1);
        let (cq, taken_ref) = (q.clone(), &taken);
        let mut consumer = child(&mut scope, move || loop {
            match cq.get(Wait::Forever) {
                Ok((seq, _)) => taken_ref.at(0).store(u64::from(seq) + 1, Ordering::Release),
                Err(_) => return 1,
            }
        });
        std::thread::sleep(Duration::from_micros(delay_us));
        consumer.signal(nix::sys::signal::Signal::SIGKILL).unwrap();
        consumer.wait_deadline(DEADLINE).unwrap();
        let used = taken.at(0).load(Ordering::Acquire) as u32;
        prop_assert!(used + 1 < n, "the kill came after the consumer took every item");
        let first_left = match q.get(Wait::For(DEADLINE)) {
            Ok((seq, _)) => seq,
            Err(e) => panic!("queue unusable after the kill: {e}"),
        };
        prop_assert!(first_left == used || first_left == used + 1, "used {}, next {}", used, first_left);
        let mut expect = first_left + 1;
        while let Ok((seq, _)) = q.get(Wait::No) {
            prop_assert_eq!(seq, expect);
            expect += 1;
        }
        prop_assert_eq!(expect, n);
        scope.assert_clean();
    }
}

/// An item whose frame (payload and its 4-byte length) fills the ring
/// exactly is accepted and comes back whole; one byte more is refused.
#[test]
fn an_item_that_fills_the_ring_exactly_fits_and_one_byte_more_does_not() {
    let q: Queue<Vec<u8>> = Queue::with_capacity_bytes(0, 64).unwrap();
    let encoded = |n: usize| ipckit::frame::encode(&vec![7u8; n]).unwrap().len();
    let n = (0..64)
        .find(|&n| encoded(n) + 4 == 64)
        .expect("a size that fills 64 bytes");
    q.put(&vec![7u8; n], Wait::No).unwrap();
    assert_eq!(q.get(Wait::No).unwrap(), vec![7u8; n]);
    let err = q.put(&vec![7u8; n + 1], Wait::No).unwrap_err();
    assert!(err.to_string().contains("larger capacity"), "{err}");
}

/// `put_nowait` puts, or says Full at once; `empty` and `is_closed` tell the
/// truth either way.
#[test]
fn put_nowait_empty_and_is_closed_report_the_queue_as_it_is() {
    let q: Queue<u8> = Queue::new(1).unwrap();
    assert!(q.empty() && !q.is_closed());
    q.put_nowait(&5).unwrap();
    assert!(!q.empty());
    assert!(matches!(q.put_nowait(&6), Err(Error::Full(_))));
    assert_eq!(q.get_nowait().unwrap(), 5);
    assert!(q.empty());
    q.close().unwrap();
    assert!(q.is_closed());
}
