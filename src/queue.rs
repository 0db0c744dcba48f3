//! `multiprocessing.Queue` and `JoinableQueue`: a FIFO many related processes
//! can put to and get from at once.
//!
//! The tutorial's steps: make the queue before forking (`Queue(maxsize)`);
//! producers `put` items, consumers `get` them; `put` waits while the queue is
//! full and `get` while it is empty, each with an optional timeout that ends in
//! `Full` / `Empty`; `qsize`, `empty`, `full` look at it; `close` says no more
//! items will come. A `JoinableQueue` also counts unfinished items: each `get`
//! is answered by a `task_done`, and `join` waits until every item put has been.
//!
//! # How it works
//! Everything lives in one anonymous shared mapping (`mmap(2)` with
//! `MAP_SHARED | MAP_ANONYMOUS`) made before the fork: a header with a robust
//! process-shared mutex and three futex-based condition variables
//! ([`SharedCondvar`], `futex(2)`), then a ring of bytes holding the items as
//! frames (a 4-byte length, then the postcard encoding). `put` copies the
//! frame into the free part of the ring and `get` copies it out, both under
//! the mutex; there is no feeder thread and no pipe.
//!
//! # Without Python's traps
//! - **No hidden buffer.** When `put` returns, the item is in shared memory:
//!   the producer may exit at once, and joining it before the queue is drained
//!   never deadlocks (Python's feeder thread must flush first).
//! - **Exact `qsize` everywhere** (it is a counter in shared memory; Python's
//!   raises `NotImplementedError` on macOS).
//! - **A process killed mid-operation leaves the queue usable.** The mutex is
//!   robust: the next process to lock it after a holder died gets it (and the
//!   queue counts a recovery). The state a `put` or `get` publishes is one
//!   64-bit word (ring offset and operation count, stored with a single atomic
//!   store) written *after* the bytes are copied, so a process killed before
//!   that store changed nothing anyone can see, and one killed after it
//!   finished its operation. An item is never lost once `put` has returned,
//!   nor delivered twice; an item whose `get` committed but whose consumer died
//!   before using it is gone with that consumer, as with any queue.
//!   The number of unfinished tasks (`JoinableQueue`) is the put count minus
//!   a done count, so it is exact under kills too.
//! - **No kill can wedge a wait.** Waiters sleep on futex sequence words, not
//!   on glibc's `pthread_cond_t` (which a waiter killed inside
//!   `pthread_cond_wait` can wedge for good). Every state change wakes *all*
//!   waiters of its word, so a woken waiter that is killed swallows no one
//!   else's wake-up; and it wakes them *before* its one publishing store,
//!   still holding the mutex, so a process killed between the two has
//!   published nothing (the woken waiters find the old state and sleep
//!   again). Wake-ups never rely on a timer.
//!
//! Unlike Python's per-process `close()`, [`Queue::close`] closes the queue for
//! everyone: later puts fail with [`Error::Closed`], gets drain what is there
//! and then fail with [`Error::Closed`].

use crate::error::{Error, Result};
use crate::frame;
use crate::region::{AnonMapping, SharedRegion};
use crate::sync::{MutexGuard, MutexKind, RobustMutex, SharedCondvar};
use serde::{Serialize, de::DeserializeOwned};
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The default size of the ring of bytes (8 MiB).
pub const DEFAULT_CAPACITY_BYTES: usize = 8 << 20;

/// The longest a bounded operation waits for the queue's lock itself.
pub const LOCK_PATIENCE: Duration = Duration::from_secs(1);

/// Bytes of ring taken by each item besides its payload (the length prefix).
const FRAME_OVERHEAD: usize = 4;

/// How to wait in [`Queue::put`] and [`Queue::get`] (Python's `block` and `timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// `block=False`: fail at once with `Full` / `Empty`.
    No,
    /// `block=True, timeout=None`: wait as long as it takes.
    Forever,
    /// `block=True, timeout=t`: wait at most this long.
    For(Duration),
}

/// The header at the start of the mapping. After creation, each operation
/// changes it with one atomic store (`write`, `read`, `done` or `closed`);
/// only `recoveries` is a plain counter.
#[repr(C)]
struct Header {
    mutex: RobustMutex,
    not_empty: SharedCondvar,
    not_full: SharedCondvar,
    all_done: SharedCondvar,
    /// Ring offset where the next frame goes (low 32 bits) and the number of
    /// puts ever committed (high 32 bits, wrapping).
    write: AtomicU64,
    /// Ring offset of the oldest frame (low 32 bits) and the number of gets
    /// ever committed (high 32 bits, wrapping).
    read: AtomicU64,
    /// Items marked done (JoinableQueue), wrapping: the unfinished ones are
    /// the put count minus this.
    done: AtomicU32,
    /// How often a lock was recovered from a holder that died.
    recoveries: AtomicU64,
    closed: AtomicBool,
    maxsize: usize,
    capacity: usize,
}

/// A multi-process FIFO of `T` (Python's `multiprocessing.Queue`).
///
/// Make it before forking; every process that inherited it (or a clone of it)
/// can put and get. Cloning is cheap (the mapping is shared and unmapped when
/// the last clone in a process is dropped).
pub struct Queue<T> {
    map: Arc<AnonMapping>,
    _items: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            map: Arc::clone(&self.map),
            _items: PhantomData,
        }
    }
}

/// A snapshot of a queue's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueStats {
    /// Items in the queue now (`qsize`).
    pub items: usize,
    /// Bytes of ring those items use, length prefixes included.
    pub bytes: usize,
    /// Items put and not yet marked done (`JoinableQueue`).
    pub unfinished: u64,
    /// How many times a process found the lock held by a dead process and recovered it.
    pub recoveries: u64,
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// `Queue(maxsize)`: at most `maxsize` items (0 = no limit on the number of
    /// items), in a ring of [`DEFAULT_CAPACITY_BYTES`].
    pub fn new(maxsize: usize) -> Result<Queue<T>> {
        Self::with_capacity_bytes(maxsize, DEFAULT_CAPACITY_BYTES)
    }

    /// Like [`new`](Self::new) with a ring of `capacity` bytes: with no item
    /// limit, `put` still waits when the bytes run out. Between 64 bytes and 4 GiB.
    pub fn with_capacity_bytes(maxsize: usize, capacity: usize) -> Result<Queue<T>> {
        if !(64..=u32::MAX as usize).contains(&capacity) {
            return Err(Error::invalid(
                "queue capacity",
                format!("{capacity} bytes: must be between 64 bytes and 4 GiB"),
            ));
        }
        let header = std::mem::size_of::<Header>().next_multiple_of(64);
        let map = AnonMapping::new(header + capacity)?;
        let ptr: *mut Header = map.place(0)?;
        // SAFETY: `ptr` is the start of a fresh, zeroed, page-aligned shared
        // mapping big enough for the header, and nobody else can see it yet (no
        // fork has shared it), so this reference is unique; all zeroes is a
        // valid `Header` (integers, atomics, a mutex not yet initialised).
        let h = unsafe { &mut *ptr };
        // SAFETY: the mutex's place in the header: valid, aligned, unused, and
        // kept mapped by the queue. It is initialised before any fork.
        unsafe { RobustMutex::init_at(&raw mut h.mutex, MutexKind::ErrorCheck)? };
        for cond in [
            &raw mut h.not_empty,
            &raw mut h.not_full,
            &raw mut h.all_done,
        ] {
            // SAFETY: as for the mutex: each is its own place in the header.
            unsafe { SharedCondvar::init_at(cond)? };
        }
        h.maxsize = maxsize;
        h.capacity = capacity;
        Ok(Queue {
            map: Arc::new(map),
            _items: PhantomData,
        })
    }

    /// `put(item, block, timeout)`: appends `item`. Waits while the queue is
    /// full as `wait` says; fails with [`Error::Full`] when it may not wait
    /// longer, [`Error::Closed`] once the queue is closed, and
    /// [`Error::Invalid`] for an item larger than the whole ring.
    pub fn put(&self, item: &T, wait: Wait) -> Result<()> {
        let payload = frame::encode(item)?;
        let need = payload.len() + FRAME_OVERHEAD;
        let h = self.header();
        if need > h.capacity {
            return Err(Error::invalid(
                "queue item",
                format!(
                    "{} bytes encoded do not fit in a ring of {} bytes; make the queue with a larger capacity",
                    payload.len(),
                    h.capacity
                ),
            ));
        }
        let mut guard = self.lock(wait)?;
        let deadline = Deadline::new(wait);
        loop {
            if h.closed.load(Ordering::Acquire) {
                return Err(Error::Closed("the queue".into()));
            }
            let (items, bytes) = self.occupancy();
            let room = h.capacity - bytes >= need && (h.maxsize == 0 || items < h.maxsize);
            if room {
                break;
            }
            self.sleep_on(&h.not_full, &mut guard, &deadline, || {
                Error::Full(format!("the queue ({items} items, {bytes} bytes)"))
            })?;
        }
        let committed = self.copy_frame_in(&payload);
        // Wake before publishing, under the lock (see the module doc).
        h.not_empty.notify_all()?;
        h.write.store(committed, Ordering::Release);
        drop(guard);
        Ok(())
    }

    /// `get(block, timeout)`: removes and returns the oldest item. Waits while
    /// the queue is empty as `wait` says; fails with [`Error::Empty`] when it
    /// may not wait longer, and with [`Error::Closed`] once the queue is closed
    /// *and* drained.
    pub fn get(&self, wait: Wait) -> Result<T> {
        let h = self.header();
        let mut guard = self.lock(wait)?;
        let deadline = Deadline::new(wait);
        while self.occupancy().0 == 0 {
            if h.closed.load(Ordering::Acquire) {
                return Err(Error::Closed("the queue (and it is drained)".into()));
            }
            self.sleep_on(&h.not_empty, &mut guard, &deadline, || {
                Error::Empty("the queue".into())
            })?;
        }
        let (payload, committed) = self.copy_frame_out();
        h.not_full.notify_all()?;
        h.read.store(committed, Ordering::Release);
        drop(guard);
        frame::decode(&payload)
    }

    /// `put_nowait(item)`: `put(item, Wait::No)`.
    pub fn put_nowait(&self, item: &T) -> Result<()> {
        self.put(item, Wait::No)
    }

    /// `get_nowait()`: `get(Wait::No)`.
    pub fn get_nowait(&self) -> Result<T> {
        self.get(Wait::No)
    }

    /// `qsize()`: the exact number of items in the queue now.
    pub fn qsize(&self) -> usize {
        self.occupancy().0
    }

    /// `empty()`: no items now.
    pub fn empty(&self) -> bool {
        self.qsize() == 0
    }

    /// `full()`: `maxsize` items now (never true for an unlimited queue).
    pub fn full(&self) -> bool {
        let max = self.header().maxsize;
        max > 0 && self.qsize() >= max
    }

    /// `close()`: no more puts, from any process; waiting putters and getters
    /// wake up (getters first drain what is left).
    pub fn close(&self) -> Result<()> {
        let h = self.header();
        let _guard = self.lock(Wait::Forever)?;
        h.not_empty.notify_all()?;
        h.not_full.notify_all()?;
        h.closed.store(true, Ordering::Release);
        Ok(())
    }

    /// True once [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.header().closed.load(Ordering::Acquire)
    }

    /// The queue's counters now.
    pub fn stats(&self) -> QueueStats {
        let h = self.header();
        let (items, bytes) = self.occupancy();
        QueueStats {
            items,
            bytes,
            unfinished: u64::from(self.unfinished()),
            recoveries: h.recoveries.load(Ordering::Acquire),
        }
    }

    fn header(&self) -> &Header {
        // SAFETY: the mapping starts with a Header initialised in
        // `with_capacity_bytes`, and lives as long as `self`.
        unsafe { &*self.map.as_ptr().cast::<Header>() }
    }

    fn ring(&self) -> *mut u8 {
        let offset = std::mem::size_of::<Header>().next_multiple_of(64);
        // SAFETY: the mapping is `offset + capacity` bytes long.
        unsafe { self.map.as_ptr().add(offset) }
    }

    /// Locks the header's mutex; counts a recovery when the previous holder
    /// died (the state is consistent by construction). The lock is only ever
    /// held for a copy, so even a non-blocking call may wait for it, but never
    /// longer than [`LOCK_PATIENCE`] unless told to wait forever: a holder that
    /// is stopped (`SIGSTOP`) then gives [`Error::Timeout`], not a hang.
    fn lock(&self, wait: Wait) -> Result<MutexGuard<'_>> {
        let mutex = &self.header().mutex;
        let guard = match wait {
            Wait::No => mutex.lock_timeout(LOCK_PATIENCE)?,
            Wait::Forever => mutex.lock()?,
            Wait::For(t) => mutex.lock_timeout(t.max(LOCK_PATIENCE))?,
        };
        if guard.previous_owner_died() {
            self.header().recoveries.fetch_add(1, Ordering::AcqRel);
        }
        Ok(guard)
    }

    /// Waits on `cv` until notified (or until the deadline); `Err(on_timeout())`
    /// once the deadline has passed or waiting is not allowed.
    fn sleep_on(
        &self,
        cv: &SharedCondvar,
        guard: &mut MutexGuard<'_>,
        deadline: &Deadline,
        on_timeout: impl Fn() -> Error,
    ) -> Result<()> {
        let left = deadline.left().ok_or_else(on_timeout)?;
        let known = guard.previous_owner_died();
        match left {
            None => cv.wait(guard)?,
            Some(left) => _ = cv.wait_timeout(guard, left)?,
        }
        if guard.previous_owner_died() && !known {
            self.header().recoveries.fetch_add(1, Ordering::AcqRel);
        }
        Ok(())
    }

    /// (items, bytes) in the ring, from the two published words.
    fn occupancy(&self) -> (usize, usize) {
        let h = self.header();
        // No lock is held, so a put and a get may commit between the two
        // loads. Reading the get count first keeps gets <= puts: every get
        // we see followed its put, and the put count only grows afterwards.
        // (The other order could see a get whose put came after the load,
        // and `puts - gets` would wrap to about `u32::MAX`.)
        let (head, gets) = unpack(h.read.load(Ordering::Acquire));
        let (tail, puts) = unpack(h.write.load(Ordering::Acquire));
        let items = puts.wrapping_sub(gets) as usize;
        let bytes = match items {
            0 => 0,
            _ => match (tail + h.capacity - head) % h.capacity {
                0 => h.capacity,
                used => used,
            },
        };
        (items, bytes)
    }

    /// Items put and not yet marked done (wrapping counts: exact below 2^32).
    fn unfinished(&self) -> u32 {
        let h = self.header();
        let (_, puts) = unpack(h.write.load(Ordering::Acquire));
        puts.wrapping_sub(h.done.load(Ordering::Acquire))
    }

    /// Copies one frame in at the tail; returns the `write` word that
    /// publishes it (the caller stores it).
    fn copy_frame_in(&self, payload: &[u8]) -> u64 {
        let h = self.header();
        let (tail, puts) = unpack(h.write.load(Ordering::Acquire));
        let len = (payload.len() as u32).to_le_bytes();
        let after_len = self.copy_in(tail, &len);
        let after = self.copy_in(after_len, payload);
        pack(after, puts.wrapping_add(1))
    }

    /// Copies the oldest frame out; returns it with the `read` word that
    /// publishes its removal (the caller stores it).
    fn copy_frame_out(&self) -> (Vec<u8>, u64) {
        let h = self.header();
        let (head, gets) = unpack(h.read.load(Ordering::Acquire));
        let mut len = [0u8; 4];
        let after_len = self.copy_out(head, &mut len);
        let mut payload = vec![0u8; u32::from_le_bytes(len) as usize];
        let after = self.copy_out(after_len, &mut payload);
        (payload, pack(after, gets.wrapping_add(1)))
    }

    /// Copies `src` into the ring at `at`, wrapping; returns the offset after it.
    fn copy_in(&self, at: usize, src: &[u8]) -> usize {
        let cap = self.header().capacity;
        let first = src.len().min(cap - at);
        let (head, tail) = src.split_at(first);
        // SAFETY: `at < cap`, so the offset is inside the ring.
        let dst = unsafe { self.ring().add(at) };
        // SAFETY: `first <= cap - at` bytes from `at` stay in the ring; the
        // caller holds the mutex, so no one else writes there.
        unsafe { std::ptr::copy_nonoverlapping(head.as_ptr(), dst, head.len()) };
        // SAFETY: the rest (`src.len() - first <= cap - first`, as a frame never
        // exceeds the ring) wraps to the ring's start, under the same mutex.
        unsafe { std::ptr::copy_nonoverlapping(tail.as_ptr(), self.ring(), tail.len()) };
        (at + src.len()) % cap
    }

    /// Copies `dst.len()` bytes out of the ring from `at`, wrapping.
    fn copy_out(&self, at: usize, dst: &mut [u8]) -> usize {
        let cap = self.header().capacity;
        let first = dst.len().min(cap - at);
        let len = dst.len();
        let (head, tail) = dst.split_at_mut(first);
        // SAFETY: `at < cap`, so the offset is inside the ring.
        let src = unsafe { self.ring().add(at) };
        // SAFETY: as in `copy_in`; the bytes were written by a committed put.
        unsafe { std::ptr::copy_nonoverlapping(src, head.as_mut_ptr(), head.len()) };
        // SAFETY: as in `copy_in`: the wrapped rest, from the ring's start.
        unsafe { std::ptr::copy_nonoverlapping(self.ring(), tail.as_mut_ptr(), tail.len()) };
        (at + len) % cap
    }
}

fn pack(offset: usize, count: u32) -> u64 {
    (u64::from(count) << 32) | offset as u64
}

fn unpack(word: u64) -> (usize, u32) {
    ((word & 0xffff_ffff) as usize, (word >> 32) as u32)
}

/// When a wait must end.
struct Deadline {
    wait: Wait,
    until: Option<Instant>,
}

impl Deadline {
    fn new(wait: Wait) -> Deadline {
        let until = match wait {
            Wait::For(t) => Some(Instant::now() + t),
            _ => None,
        };
        Deadline { wait, until }
    }

    /// How long one may still sleep: `None` when waiting is over,
    /// `Some(None)` without a limit.
    fn left(&self) -> Option<Option<Duration>> {
        match (self.wait, self.until) {
            (Wait::No, _) => None,
            (_, None) => Some(None),
            (_, Some(until)) => {
                let left = until.saturating_duration_since(Instant::now());
                (!left.is_zero()).then_some(Some(left))
            }
        }
    }
}

/// `multiprocessing.JoinableQueue`: a [`Queue`] whose items must each be
/// marked done with [`task_done`](Self::task_done); [`join`](Self::join)
/// waits until all have been.
pub struct JoinableQueue<T> {
    queue: Queue<T>,
}

impl<T> Clone for JoinableQueue<T> {
    fn clone(&self) -> Self {
        JoinableQueue {
            queue: self.queue.clone(),
        }
    }
}

impl<T: Serialize + DeserializeOwned> JoinableQueue<T> {
    /// `JoinableQueue(maxsize)`.
    pub fn new(maxsize: usize) -> Result<JoinableQueue<T>> {
        Ok(JoinableQueue {
            queue: Queue::new(maxsize)?,
        })
    }

    /// The underlying queue (put, get, qsize, close, ...).
    pub fn queue(&self) -> &Queue<T> {
        &self.queue
    }

    /// `task_done()`: one item taken with `get` is finished. Calling it more
    /// often than items were put is an error (Python raises `ValueError`).
    pub fn task_done(&self) -> Result<()> {
        let h = self.queue.header();
        let _guard = self.queue.lock(Wait::Forever)?;
        let left = self.queue.unfinished();
        if left == 0 {
            return Err(Error::invalid(
                "task_done",
                "called more times than there were items put",
            ));
        }
        if left == 1 {
            // Wake before publishing, under the lock (see the module doc).
            h.all_done.notify_all()?;
        }
        let done = h.done.load(Ordering::Acquire);
        h.done.store(done.wrapping_add(1), Ordering::Release);
        Ok(())
    }

    /// `join()`: waits until every item put has been marked done, at most
    /// `timeout` if given ([`Error::Timeout`] then).
    pub fn join(&self, timeout: Option<Duration>) -> Result<()> {
        let h = self.queue.header();
        let wait = timeout.map_or(Wait::Forever, Wait::For);
        let mut guard = self.queue.lock(wait)?;
        let deadline = Deadline::new(wait);
        while self.queue.unfinished() > 0 {
            let what = || Error::Timeout {
                what: "every queued item to be marked done".into(),
                after: timeout.unwrap_or_default(),
            };
            self.queue
                .sleep_on(&h.all_done, &mut guard, &deadline, what)?;
        }
        Ok(())
    }
}
